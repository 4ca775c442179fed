# Per-object priors carried along the flow: cache/<ds>/warp/<key>/<video>.zarr
# and the flow-propagation baseline's label maps: cache/<ds>/propagate/<key>/<video>.zarr


rule warp:
    input:
        dataset_input,
        unpack(upstream_stores("warp")),
    output:
        directory("cache/{ds}/warp/{key}/{video}.zarr"),
    log:
        "cache/{ds}/logs/warp/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/warp/{key}/{video}.tsv"
    conda:
        "../../envs/stg.yaml"
    params:
        settings=lambda wc: settings_json("warp", wc.key),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
        # a refinement pass warps the previous pass's label maps (source previous_pass)
        # (an argument string: the path is shell-quoted here, so the shell command uses {params.previous} as is)
        previous=lambda wc, input: (
            f"--previous-labels {shlex.quote(input.previous_labels)}" if "previous_labels" in input.keys() else ""
        ),
    shell:
        "stg warp --dataset-root {params.root:q} --layout {params.layout:q} --split {params.split:q} "
        "--video {wildcards.video:q} --flow {input.flow:q} {params.previous} --settings {params.settings:q} "
        "--key {wildcards.key:q} --out {output:q} 2> {log:q}"


rule propagate:
    input:
        unpack(upstream_stores("propagate")),
    output:
        directory("cache/{ds}/propagate/{key}/{video}.zarr"),
    log:
        "cache/{ds}/logs/propagate/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/propagate/{key}/{video}.tsv"
    conda:
        "../../envs/stg.yaml"
    params:
        settings=lambda wc: settings_json("propagate", wc.key),
    shell:
        "stg propagate --warp {input.warp:q} --settings {params.settings:q} --key {wildcards.key:q} --out {output:q} "
        "2> {log:q}"
