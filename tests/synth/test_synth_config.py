import pytest
from linksyn.config import ConfigError, load_config


def test_synth_section_from_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("synth:\n  refiner_model: 'openai:http://127.0.0.1:8000/v1#judge'\n  grades: [1, 5]\n")
    cfg = load_config(p)
    assert cfg.synth.refiner_model.endswith("#judge") and cfg.synth.grades == [1, 5]


def test_defaults_keep_embedded_runs_fast():
    from linksyn.config import LinksynConfig

    cfg = LinksynConfig()
    assert cfg.synth.model == "embedded" and cfg.synth.refiner_model is None


@pytest.mark.parametrize("yaml_text,needle", [
    ("synth:\n  grades: [0, 3]\n", "synth.grades.0"),
    ("synth:\n  sink:\n    output_dir: x\n", "synth.sink"),  # the sink has its own top-level section now
])
def test_bad_values_are_named(tmp_path, yaml_text, needle):
    p = tmp_path / "c.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert needle in str(e.value)
