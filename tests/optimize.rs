//! `Index::optimize`: renumbering nodes in breadth-first order changes no answer, keeps the
//! capacity, and leaves an index that grows, removes, saves and loads as before.

mod common;

use common::{build, mixture, Scratch};
use hnswx::{Index, Metric, Params, Quantization};

#[test]
fn optimize_keeps_every_answer_and_the_capacity() {
    let (base, queries) = mixture(3000, 40, 32, 21);
    for q in [Quantization::None, Quantization::Sq8, Quantization::F16] {
        let params = Params::new(32, Metric::L2).seed(3).quantization(q);
        let mut index = Index::new(params, 4000).unwrap();
        index
            .add_batch(&(0..2500).collect::<Vec<_>>(), &base.as_slice()[..2500 * 32])
            .unwrap();
        for l in (0..2500).step_by(9) {
            index.remove(l).unwrap();
        }
        index.consolidate();
        let before: Vec<_> = queries.rows().map(|v| index.search(v, 10, 64).unwrap()).collect();
        let stats = index.graph_stats();
        index.optimize().unwrap();
        assert_eq!(index.capacity(), 4000);
        assert_eq!(index.len(), 2500 - 2500usize.div_ceil(9));
        let after: Vec<_> = queries.rows().map(|v| index.search(v, 10, 64).unwrap()).collect();
        assert_eq!(before, after, "{q:?}");
        let again = index.graph_stats();
        assert_eq!(again.unreachable, stats.unreachable);
        // The entry point is slot 0 now; the table still grows into the free slots.
        index
            .add_batch(&(2500..3000).collect::<Vec<_>>(), &base.as_slice()[2500 * 32..])
            .unwrap();
        assert_eq!(index.search(base.row(2999), 1, 32).unwrap()[0].label, 2999);
        assert!(!index.contains(9));
        assert!(index.contains(10));
        let dir = Scratch::new(&format!("optimize-{q:?}"));
        let path = dir.join("index.hnswx");
        index.save(&path).unwrap();
        let loaded = Index::load(&path).unwrap();
        for v in queries.rows().take(10) {
            assert_eq!(index.search(v, 10, 64).unwrap(), loaded.search(v, 10, 64).unwrap());
        }
    }
}

#[test]
fn optimize_on_empty_and_tiny_indexes() {
    let mut empty = Index::new(Params::new(4, Metric::L2), 10).unwrap();
    empty.optimize().unwrap();
    assert!(empty.search(&[0.0; 4], 1, 8).unwrap().is_empty());
    empty.add(1, &[1.0, 0.0, 0.0, 0.0]).unwrap();
    empty.optimize().unwrap();
    assert_eq!(empty.search(&[1.0, 0.0, 0.0, 0.0], 1, 8).unwrap()[0].label, 1);
    let (base, _) = mixture(200, 0, 8, 2);
    let mut index = build(Params::new(8, Metric::Cosine), &base, 1);
    index.remove(0).unwrap();
    index.optimize().unwrap();
    assert_eq!(index.len(), 199);
    assert_eq!(index.search(base.row(5), 1, 32).unwrap()[0].label, 5);
}
