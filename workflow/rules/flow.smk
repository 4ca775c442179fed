# Optical flow per video: cache/<ds>/flow/<key>/<video>.zarr


rule flow:
    input:
        dataset_input,
    output:
        directory("cache/{ds}/flow/{key}/{video}.zarr"),
    log:
        "cache/{ds}/logs/flow/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/flow/{key}/{video}.tsv"
    conda:
        "../../envs/stg.yaml"
    resources:
        gpu=lambda wc: int(
            stage_uses_gpu(
                "flow",
                plan_for("flow", wc.key).settings["flow"],
                config["stages"]["flow"]["device"],
            )
        ),
    params:
        device=config["stages"]["flow"]["device"],
        settings=lambda wc: settings_json("flow", wc.key),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
    shell:
        "stg flow --dataset-root {params.root:q} --layout {params.layout:q} --split {params.split:q} "
        "--video {wildcards.video:q} --settings {params.settings:q} --device {params.device:q} "
        "--key {wildcards.key:q} --out {output:q} 2> {log:q}"
