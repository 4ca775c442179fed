# Trained models: cache/models/<model>/<key>/ (weights, training.json, curve.png). A stage whose settings say
# `weights: trained` reads the model of this config's `training:` block; its key hashes the model's key.
# train_segmenter reads the training splits' flow stores, train_graph their segment and warp stores (the
# cached proposals and priors, made by the same rules as any run's; see stg.models.graph_source_plan).


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


rule train_graph:
    input:
        graph_training_inputs,
    output:
        directory("cache/models/graph/{key}"),
    params:
        settings=lambda wc: json.dumps(
            {k: v for k, v in graph_training().settings.items() if k not in ("device", "variant")}, sort_keys=True
        ),
        data=lambda wc: json.dumps(graph_training().data_arguments(graph_training().data)),
        validation=lambda wc: json.dumps(graph_training().data_arguments(graph_training().validation)),
        work=lambda wc: graph_training().work_folder,
    threads: 2
    resources:
        gpu=lambda wc: int(training_uses_gpu(GRAPH_TRAINING_DEVICE, "graph")),
    log:
        "cache/models/logs/graph/{key}.log",
    benchmark:
        "cache/models/benchmarks/graph/{key}.tsv"
    shell:
        "stg train-graph --settings {params.settings:q} --data {params.data:q} "
        "--validation {params.validation:q} --device {GRAPH_TRAINING_DEVICE:q} --threads {threads:q} "
        "--work {params.work:q} --key {wildcards.key:q} --out {output:q} 2> {log:q}"
