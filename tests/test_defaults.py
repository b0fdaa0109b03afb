"""One source for every default: the command line's, the functions' and the settings' agree."""

from __future__ import annotations

import argparse
import dataclasses
import inspect

import pytest

from ssimnet.cli import OVERRIDES, parser
from ssimnet.config import (
    DEFAULT_INFERENCE,
    DEFAULT_PROFILE,
    DEFAULT_PSEUDO,
    DEFAULT_SEED,
    FALLBACK_BELOW,
    INSTANCE_METHODS,
    PROFILES,
    TOOL_INFERENCE,
    InferenceConfig,
    default_workers,
    get_profile,
)


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found |= _subcommands(sub, f"{prefix}{name} ")
    return found


COMMANDS = _subcommands(parser())


def _options(command: str) -> dict[str, argparse.Action]:
    return {a.dest: a for a in COMMANDS[command]._actions if a.option_strings}


def test_every_command_with_a_profile_a_seed_or_workers_has_the_same_default():
    profiles = seeds = workers = 0
    for command in COMMANDS:
        options = _options(command)
        if "profile" in options:
            profiles += 1
            assert options["profile"].default == DEFAULT_PROFILE, command
            assert options["profile"].choices == list(PROFILES), command
        if "seed" in options:
            seeds += 1
            assert options["seed"].default == DEFAULT_SEED, command
        if "workers" in options:
            workers += 1
            assert options["workers"].default == default_workers(), command
    assert (profiles, seeds, workers) == (5, 4, 4)  # data synth, pseudo-labels, train, segment, book


def test_segment_options_default_to_the_network_s_own_settings():
    options = _options("segment")
    fields = set(InferenceConfig.__dataclass_fields__)
    for name in OVERRIDES:  # every option that overrides a setting is one of InferenceConfig's, unset by default
        assert name in fields and name in options, name
        assert options[name].default is None, name
    assert options["instances"].choices == list(INSTANCE_METHODS)
    assert "the network's" in options["instances"].help and "default: %(default)s" in options["workers"].help


def test_the_help_says_which_profile_is_the_default(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["train", "--help"])
    assert f"default: {DEFAULT_PROFILE}" in " ".join(capsys.readouterr().out.split())


def test_function_defaults_are_the_settings_defaults():
    from ssimnet.net.architecture import Architecture
    from ssimnet.predict import instances, predict_maps
    from ssimnet.tool.normalize import StainNormalizer
    from ssimnet.tool.segmenter import settings_for

    def default(function, name):
        return inspect.signature(function).parameters[name].default

    assert default(instances, "method") == DEFAULT_INFERENCE.instances
    for name in ("min_size", "max_hole", "min_object_probability"):
        assert default(instances, name) == getattr(DEFAULT_INFERENCE, name), name
    assert default(predict_maps, "overlap") == DEFAULT_INFERENCE.tile_overlap
    assert default(StainNormalizer.__init__, "min_scale") == DEFAULT_INFERENCE.normalize_min_scale == 1.0
    assert default(StainNormalizer.__init__, "n_samples") == DEFAULT_PSEUDO.stain_samples
    # what segment does with a network that stores nothing: the tool's defaults, no references for --mpp auto
    assert settings_for(Architecture()) == dataclasses.replace(TOOL_INFERENCE, nucleus_scale=None, nucleus_area=None)


def test_the_stain_guard_s_defaults_are_stain_guard_s():
    from ssimnet.config import NORMALIZE_MODES, STAIN_GUARD
    from ssimnet.tool.stain_guard import check_stains, order_stains

    def default(function, name):
        return inspect.signature(function).parameters[name].default

    assert default(order_stains, "margin") == STAIN_GUARD.order_margin
    assert default(order_stains, "min_density") == STAIN_GUARD.order_min_density
    assert default(check_stains, "one_stain_angle") == STAIN_GUARD.one_stain_angle
    assert default(check_stains, "one_stain_spread") == STAIN_GUARD.one_stain_spread
    normalize = [a for a in COMMANDS["segment"]._actions if a.dest == "normalize"]
    assert [a.option_strings for a in normalize] == [["--normalize"], ["--no-normalize"]]
    assert normalize[0].choices == list(NORMALIZE_MODES) and normalize[1].const == "off"
    assert all(a.default is None for a in normalize)  # the network's setting


def test_profiles_differ_from_the_defaults_only_where_they_say_why():
    smoke, cpu, paper = (get_profile(n) for n in ("smoke", "cpu", "paper"))
    assert paper.inference == DEFAULT_INFERENCE and paper.for_tool() == paper
    # the tool's inference: the same settings in every profile but the instance method, the object threshold
    # and the watershed fallback, whose threshold was chosen for the cpu profile's network (FALLBACK_BELOW)
    for profile in (smoke, cpu):
        tool = profile.for_tool().inference
        assert dataclasses.replace(tool, instances="cc", min_object_probability=0.0, finetune_lr=None,
                                   fallback_below=None) == TOOL_INFERENCE
    assert cpu.for_tool().inference.fallback_below == FALLBACK_BELOW and smoke.for_tool().inference.fallback_below is None


def test_inference_settings_check_their_invariants():
    settings = InferenceConfig(tile_size=1024, region_halo=96)
    assert settings.region_tile + 2 * settings.region_halo == settings.tile_size == 1024
    for bad, match in [(dict(tile_size=200, region_halo=100), "2 \\* region_halo < tile_size"),
                       (dict(tile_overlap=256), "tile_overlap"), (dict(threshold=1.0), "threshold"),
                       (dict(stain_solver="svd"), "stain_solver"), (dict(region_side=0), "region_side"),
                       (dict(finetune_epochs=-1), "finetune_epochs")]:
        with pytest.raises(ValueError, match=match):
            InferenceConfig(**bad)
