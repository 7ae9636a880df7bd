#!/bin/bash
set -e
cd /tmp/ab
S=/work/shared/data; T=/work/main/target/data
R=${R:-7}
bash ab2.sh s7-fashion $R 10,16,32 idx/fm-f32.hnswx idx/fm-sq8.hnswx idx/fm.hl $T/fashion-mnist-784/fashion-mnist-784_base.fvecs $T/fashion-mnist-784/fashion-mnist-784_query.fvecs $S/fashion-mnist-784/fashion-mnist-784_groundtruth.ivecs l2
bash ab2.sh s7-minilm $R 24,48,64,128 idx/ml-f32.hnswx idx/ml-sq8.hnswx idx/ml.hl $S/minilm-100k/minilm-100k_base.fvecs $S/minilm-100k/minilm-100k_query.fvecs $S/minilm-100k/minilm-100k_groundtruth.ivecs ip
bash ab2.sh s7-sift $R 16,32,64,128 idx/sf-f32.hnswx idx/sf-sq8.hnswx idx/sf.hl $S/sift5k/sift5k_base.fvecs sq_query.fvecs sq_gt.ivecs l2
bash ab2.sh s7-mixture $R 24,32,48,96 idx/mx-f32.hnswx idx/mx-sq8.hnswx idx/mx.hl $T/mixture-100k/mixture-100k_base.fvecs $T/mixture-100k/mixture-100k_query.fvecs $T/mixture-100k/mixture-100k_gt.ivecs l2
for n in fashion minilm sift mixture; do python3 med2.py s7-$n.txt; done
