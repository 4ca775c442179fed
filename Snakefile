# STG-Net as a staged, cached pipeline. See README.md; targets: results/<dataset>_<split>[__<variant>]
# (none given: rule all, the demo). Helpers live in workflow/rules/common.smk, the other rule files hold rules only.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


rule all:
    default_target: True
    input:
        "results/demo_val",


include: "workflow/rules/data.smk"
include: "workflow/rules/flow.smk"
include: "workflow/rules/warp.smk"
include: "workflow/rules/detect.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/graph.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/results.smk"
