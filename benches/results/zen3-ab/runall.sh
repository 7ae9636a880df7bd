#!/bin/bash
# The alternating table in the README (2026-11-26, fifth session): every set, saved graphs in
# /tmp/ab/idx (hnswx build / sweep.cpp --index), R rounds of ab2.sh. Run twice (at 669274a and
# 2c4cad8, same kernels for these dims); the two runs' NAME-s5.txt, concatenated (10 rounds), are
# stored here as sift.txt, mixture.txt, fashion.txt, minilm.txt; `python3 med2.py sift.txt`.
set -e
cd /tmp/ab
S=/work/shared/data; T=/work/main/target/data
R=${R:-5}
bash ab2.sh sift-s5 $R 16,32,64,128 idx/sf-f32.hnswx idx/sf-sq8.hnswx idx/sf.hl $S/sift5k/sift5k_base.fvecs sq_query.fvecs sq_gt.ivecs l2
bash ab2.sh mixture-s5 $R 24,32,48,96 idx/mx-f32.hnswx idx/mx-sq8.hnswx idx/mx.hl $T/mixture-100k/mixture-100k_base.fvecs $T/mixture-100k/mixture-100k_query.fvecs $T/mixture-100k/mixture-100k_gt.ivecs l2
bash ab2.sh fashion-s5 $R 10,16,32 idx/fm-f32.hnswx idx/fm-sq8.hnswx idx/fm.hl $T/fashion-mnist-784/fashion-mnist-784_base.fvecs $T/fashion-mnist-784/fashion-mnist-784_query.fvecs $S/fashion-mnist-784/fashion-mnist-784_groundtruth.ivecs l2
bash ab2.sh minilm-s5 $R 24,48,64,128 idx/ml-f32.hnswx idx/ml-sq8.hnswx idx/ml.hl $S/minilm-100k/minilm-100k_base.fvecs $S/minilm-100k/minilm-100k_query.fvecs $S/minilm-100k/minilm-100k_groundtruth.ivecs ip
for n in sift mixture fashion minilm; do python3 med2.py $n-s5.txt; done
