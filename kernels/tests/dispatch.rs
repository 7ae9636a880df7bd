//! Choosing kernels: detection, forcing by name, and errors for what the CPU lacks.

use hnswx_kernels::{auto, select, Choice, Error, Isa, Metric, Rows};

#[test]
fn auto_picks_the_best_available_and_caches_it() {
    let k = auto();
    assert_eq!(k.isa(), Isa::detect());
    assert!(k.isa().is_available());
    assert!(std::ptr::eq(k, auto()), "auto() must return the same cached table");
    assert!(std::ptr::eq(k, select(Choice::Auto).unwrap()));
}

#[test]
fn every_available_isa_can_be_forced_and_others_are_errors() {
    for isa in Isa::ALL {
        match (isa.availability(), select(Choice::Force(isa))) {
            (Ok(()), Ok(k)) => assert_eq!(k.isa(), isa),
            (Err(reason), Err(e)) => {
                assert_eq!(e, Error::Unsupported { isa, reason });
                assert!(e.to_string().contains(isa.name()), "{e}");
            }
            (a, s) => panic!("{isa}: availability {a:?} but select {:?}", s.map(|k| k.isa())),
        }
    }
    // Whatever the machine, some instruction set is foreign to it.
    #[cfg(target_arch = "x86_64")]
    assert!(matches!(
        select(Choice::Force(Isa::Neon)),
        Err(Error::Unsupported { isa: Isa::Neon, .. })
    ));
    #[cfg(target_arch = "aarch64")]
    assert!(matches!(
        select(Choice::Force(Isa::Avx2)),
        Err(Error::Unsupported { isa: Isa::Avx2, .. })
    ));
}

#[test]
fn kernel_names_parse_like_the_environment_variable() {
    assert_eq!(Choice::parse("").unwrap(), Choice::Auto);
    assert_eq!(Choice::parse(" Auto ").unwrap(), Choice::Auto);
    for isa in Isa::ALL {
        assert_eq!(Choice::parse(isa.name()).unwrap(), Choice::Force(isa));
        assert_eq!(Choice::parse(&isa.name().to_uppercase()).unwrap(), Choice::Force(isa));
        assert_eq!(isa.to_string().parse::<Isa>().unwrap(), isa);
    }
    let err = Choice::parse("avx3").unwrap_err();
    assert_eq!(err, Error::UnknownKernel("avx3".into()));
    assert!(
        err.to_string().contains("avx512"),
        "the message lists the valid names: {err}"
    );
}

#[test]
fn rows_reject_shapes_that_do_not_fit() {
    let data = [0.0f32; 12];
    assert!(Rows::new(&data, 0, 4).is_err());
    assert!(Rows::new(&data, 5, 4).is_err());
    assert!(Rows::new(&data, 5, 5).is_err()); // 12 = 2·5 + 2: not whole rows
    let r = Rows::new(&data, 3, 4).unwrap();
    assert_eq!((r.len(), r.dim(), r.stride()), (3, 3, 4));
    assert!(r.row(2).is_some() && r.row(3).is_none() && r.row(usize::MAX).is_none());
    // The last row may omit its padding: 2 rows of dim 3 at stride 4 in 7 floats.
    assert_eq!(Rows::new(&data[..7], 3, 4).unwrap().len(), 2);
}

#[test]
#[should_panic(expected = "out of range")]
fn one_to_many_rejects_an_id_past_the_table() {
    let data = [0.0f32; 8];
    let rows = Rows::new(&data, 4, 4).unwrap();
    let mut out = [0.0f32; 1];
    auto().metric(Metric::L2).distances(&[0.0; 4], rows, &[2], &mut out);
}

/// Names the kernel type [`Kernels::with_int_kernel`](hnswx_kernels::Kernels::with_int_kernel)
/// hands over.
struct KernelName;

impl hnswx_kernels::IntKernelUser for KernelName {
    type Output = &'static str;
    fn run<K: hnswx_kernels::IntKernel>(self, _: K) -> &'static str {
        std::any::type_name::<K>()
    }
}

/// Every SQ8 table this CPU can run hands its own module's kernel type to `with_int_kernel`
/// (found by the table's address), not the fallback through the table's function pointers: a
/// table missing from that list would still give right answers, only slower, and no other
/// test would notice.
#[test]
fn every_sq8_table_runs_its_own_kernel_type() {
    // (table, the module its kernel type must come from)
    #[allow(unused_mut)]
    let mut tables: Vec<(&'static hnswx_kernels::Kernels<u8>, String)> = Isa::ALL
        .into_iter()
        .filter_map(|isa| hnswx_kernels::select_for::<u8>(Choice::Force(isa)).ok())
        .filter(|k| k.isa() != Isa::Avx512)
        .map(|k| (k, format!("{}::u8_codes::", k.isa().name())))
        .collect();
    #[cfg(target_arch = "x86_64")]
    tables.extend(hnswx_kernels::avx512_u8_variants().iter().map(|&(variant, k)| {
        let module = match variant {
            "vnni" => "avx512::u8_codes_vnni::",
            "bw" => "avx512::u8_codes_bw::",
            _ => "avx512::u8_codes::",
        };
        (k, module.to_string())
    }));
    assert!(tables.len() >= 2, "scalar and portable at least");
    for (k, module) in tables {
        let name = k.with_int_kernel(KernelName);
        assert!(
            name.ends_with("IntKernelOf") && name.contains(&module),
            "{} (want {module}): {name}",
            k.isa()
        );
    }
}
