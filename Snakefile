# STG-Net as a staged, cached pipeline. See README.md; targets: results/<dataset>_<split>[__<variant>].
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/flow.smk"
include: "workflow/rules/warp.smk"
include: "workflow/rules/detect.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/graph.smk"
include: "workflow/rules/results.smk"
