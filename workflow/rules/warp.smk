# Per-object priors carried along the flow: cache/<ds>/warp/<key>/<video>.zarr
# and the flow-propagation baseline's label maps: cache/<ds>/propagate/<key>/<video>.zarr


rule warp:
    input:
        dataset_input,
        unpack(upstream_stores("warp")),
    output:
        directory("cache/{ds}/warp/{key}/{video}.zarr"),
    params:
        settings=lambda wc: settings_json("warp", wc.key),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
        # a refinement pass warps the previous pass's label maps (source previous_pass)
        previous=lambda wc, input: f"--previous-labels {input.previous_labels}" if "previous_labels" in input.keys() else "",
    log:
        "cache/{ds}/logs/warp/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/warp/{key}/{video}.tsv"
    shell:
        "stg warp --dataset-root {params.root} --layout {params.layout} --split {params.split} --video {wildcards.video} "
        "--flow {input.flow} {params.previous} --settings {params.settings:q} --key {wildcards.key} --out {output} 2> {log}"


rule propagate:
    input:
        unpack(upstream_stores("propagate")),
    output:
        directory("cache/{ds}/propagate/{key}/{video}.zarr"),
    params:
        settings=lambda wc: settings_json("propagate", wc.key),
    log:
        "cache/{ds}/logs/propagate/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/propagate/{key}/{video}.tsv"
    shell:
        "stg propagate --warp {input.warp} --settings {params.settings:q} --key {wildcards.key} --out {output} 2> {log}"
