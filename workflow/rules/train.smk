# Trained models: cache/models/<model>/<key>/ (weights, training.json, curve.png). A stage whose settings say
# `weights: trained` reads the model of this config's `training:` block; its key hashes the model's key.
# train_segmenter reads the training splits' flow stores, train_graph their segment and warp stores (the
# cached proposals and priors, made by the same rules as any run's; see stg.models.graph_source_plan).


rule train_segmenter:
    input:
        training_inputs,
    output:
        directory("cache/models/segmenter/{key}"),
    log:
        "cache/models/logs/segmenter/{key}.log",
    benchmark:
        "cache/models/benchmarks/segmenter/{key}.tsv"
    conda:
        "../../envs/stg.yaml"
    threads: 2
    resources:
        gpu=lambda wc: int(training_uses_gpu(TRAINING_DEVICE)),
    params:
        device=TRAINING_DEVICE,
        settings=lambda wc: json.dumps(
            {k: v for k, v in segmenter_training().settings.items() if k != "device"},
            sort_keys=True,
        ),
        data=lambda wc: json.dumps(segmenter_training().data_arguments(segmenter_training().data)),
        validation=lambda wc: json.dumps(segmenter_training().data_arguments(segmenter_training().validation)),
        work=lambda wc: segmenter_training().work_folder,
    shell:
        "stg train-segmenter --settings {params.settings:q} --data {params.data:q} "
        "--validation {params.validation:q} --device {params.device:q} --threads {threads:q} --work {params.work:q} "
        "--key {wildcards.key:q} --out {output:q} 2> {log:q}"


rule train_graph:
    input:
        graph_training_inputs,
    output:
        directory("cache/models/graph/{key}"),
    log:
        "cache/models/logs/graph/{key}.log",
    benchmark:
        "cache/models/benchmarks/graph/{key}.tsv"
    conda:
        "../../envs/stg.yaml"
    threads: 2
    resources:
        gpu=lambda wc: int(training_uses_gpu(GRAPH_TRAINING_DEVICE, "graph")),
    params:
        device=GRAPH_TRAINING_DEVICE,
        settings=lambda wc: json.dumps(
            {k: v for k, v in graph_training().settings.items() if k not in ("device", "variant")},
            sort_keys=True,
        ),
        data=lambda wc: json.dumps(graph_training().data_arguments(graph_training().data)),
        validation=lambda wc: json.dumps(graph_training().data_arguments(graph_training().validation)),
        work=lambda wc: graph_training().work_folder,
    shell:
        "stg train-graph --settings {params.settings:q} --data {params.data:q} "
        "--validation {params.validation:q} --device {params.device:q} --threads {threads:q} "
        "--work {params.work:q} --key {wildcards.key:q} --out {output:q} 2> {log:q}"


# Online learning (stages.segment.deeplab.online_learning): per video, the segmenter fine-tuned on the first
# annotated frame; the segment stage (or an online graph) of that video reads it (--online-model).


rule online_learning:
    input:
        dataset_input,
        unpack(online_inputs),
    output:
        directory("cache/{ds}/online/{key}/{video}"),
    log:
        "cache/{ds}/logs/online/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/online/{key}/{video}.tsv"
    conda:
        "../../envs/stg.yaml"
    # One thread, as the graph: two single-threaded jobs on 2 cores finish more videos per minute than one job on
    # two threads (torch gains 1.65x from the second thread, and sampling crops is single-threaded): README "Speed".
    threads: 1
    resources:
        gpu=lambda wc: int(stage_uses_gpu("segment", online_plan(wc.key)[1], SEGMENT_DEVICE)),
    params:
        device=SEGMENT_DEVICE,
        settings=lambda wc: json.dumps(online_plan(wc.key)[1], sort_keys=True),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
        work=lambda wc: f"cache/{wc.ds}/online/.work/{wc.key}/{wc.video}",
    shell:
        "stg online-learn --dataset-root {params.root:q} --layout {params.layout:q} --split {params.split:q} "
        "--video {wildcards.video:q} --settings {params.settings:q} --device {params.device:q} "
        "--threads {threads:q} --work {params.work:q} --key {wildcards.key:q} --out {output:q} 2> {log:q}"
