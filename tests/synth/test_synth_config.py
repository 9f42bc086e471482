import pytest

from linksyn.config import ConfigError, load_config


def test_sink_section_from_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "synth:\n  refiner_model: 'openai:http://127.0.0.1:8000/v1#judge'\n  grades: [1, 5]\n"
        "  sink:\n    output_dir: s3://bucket/ds\n    near_dup_threshold: 0.9\n"
        "    eval_sets: [{kind: mmlu, path: /data/mmlu/test}, {kind: gsm8k, path: /data/gsm8k/test.jsonl}]\n"
    )
    cfg = load_config(p)
    assert cfg.synth.refiner_model.endswith("#judge") and cfg.synth.grades == [1, 5]
    assert cfg.synth.sink.output_dir == "s3://bucket/ds" and cfg.synth.sink.near_dup_threshold == 0.9
    assert [e.kind for e in cfg.synth.sink.eval_sets] == ["mmlu", "gsm8k"]


def test_defaults_keep_embedded_runs_fast():
    from linksyn.config import LinksynConfig

    cfg = LinksynConfig()
    assert cfg.synth.model == "embedded" and cfg.synth.refiner_model is None
    assert cfg.synth.sink.formats[0] == "parquet"


@pytest.mark.parametrize("yaml_text,needle", [
    ("synth:\n  grades: [0, 3]\n", "grades must be 1..5, got [0]"),
    ("synth:\n  sink:\n    eval_sets: [{kind: hellaswag, path: x}]\n", "synth.sink.eval_sets.0.kind"),
    ("synth:\n  sink:\n    near_dup_treshold: 0.5\n", "near_dup_treshold"),
])
def test_bad_values_are_named(tmp_path, yaml_text, needle):
    p = tmp_path / "c.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert needle in str(e.value)
