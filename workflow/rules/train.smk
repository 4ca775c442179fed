# Trained models: cache/models/<model>/<key>/ (weights, training.json, curve.png). A stage whose settings say
# `weights: trained` reads the model of this config's `training:` block; its key hashes the model's key.


rule train_segmenter:
    input:
        training_inputs,
    output:
        directory("cache/models/segmenter/{key}"),
    params:
        settings=lambda wc: json.dumps(
            {k: v for k, v in segmenter_training().settings.items() if k != "device"}, sort_keys=True
        ),
        data=lambda wc: json.dumps(segmenter_training().data_arguments(segmenter_training().data)),
        validation=lambda wc: json.dumps(segmenter_training().data_arguments(segmenter_training().validation)),
        work=lambda wc: segmenter_training().work_folder,
    threads: 2
    resources:
        gpu=lambda wc: int(training_uses_gpu(TRAINING_DEVICE)),
    log:
        "cache/models/logs/segmenter/{key}.log",
    benchmark:
        "cache/models/benchmarks/segmenter/{key}.tsv"
    shell:
        "stg train-segmenter --settings {params.settings:q} --data {params.data:q} "
        "--validation {params.validation:q} --device {TRAINING_DEVICE:q} --threads {threads:q} --work {params.work:q} "
        "--key {wildcards.key:q} --out {output:q} 2> {log:q}"
