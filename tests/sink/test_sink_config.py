import pytest
from linksyn.config import ConfigError, LinksynConfig, load_config


def test_sink_section_from_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "sink:\n  output_dir: s3://bucket/ds\n  near_dup_threshold: 0.9\n"
        "  eval_sets: [{kind: mmlu, path: /data/mmlu/test}, {kind: gsm8k, path: /data/gsm8k/test.jsonl}]\n"
    )
    cfg = load_config(p)
    assert cfg.sink.output_dir == "s3://bucket/ds" and cfg.sink.near_dup_threshold == 0.9
    assert [e.kind for e in cfg.sink.eval_sets] == ["mmlu", "gsm8k"]


def test_default_formats_put_parquet_first():
    assert LinksynConfig().sink.formats[0] == "parquet"


@pytest.mark.parametrize("yaml_text,needle", [
    ("sink:\n  eval_sets: [{kind: hellaswag, path: x}]\n", "sink.eval_sets.0.kind"),
    ("sink:\n  near_dup_treshold: 0.5\n", "near_dup_treshold"),
])
def test_bad_values_are_named(tmp_path, yaml_text, needle):
    p = tmp_path / "c.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert needle in str(e.value)
