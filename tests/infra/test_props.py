"""The construct's props are the settings table's rows: generated from it (make props), typed, with
the table's defaults, read back through the table's validation."""

from __future__ import annotations

from ecr_fleet_auth import settings
from ecr_fleet_auth_cdk.config import DeploymentConfig
from ecr_fleet_auth_cdk.props import EcrFleetAuthProps
from tools import generate_props


def test_the_props_module_and_its_reference_are_what_the_table_gives() -> None:
    """infra/props.py and the reference page are generated; run `make props` after changing the table."""
    for path, render in generate_props.GENERATED.items():
        assert path.read_text(encoding="utf-8") == render(), f"{path.name}: run make props"
    assert generate_props.main(["--check"]) == 0


def test_every_prop_is_a_setting_or_a_resource_of_the_app_in_the_tables_order() -> None:
    keys = list(EcrFleetAuthProps.__annotations__)
    assert keys == [s.field for s in settings.PROP_SETTINGS] + [p.name for p in generate_props.RESOURCE_PROPS]
    assert EcrFleetAuthProps.__optional_keys__ == frozenset(keys), "every prop may be left out"
    # The app's own settings: which stacks it creates and their name (a construct has `name`).
    assert {s.key for s in settings.CONTEXT_SETTINGS if not s.prop} == {"stackName", "regions"}


def test_a_props_type_is_the_deployment_configs_field_with_any_sequence_for_a_list() -> None:
    for setting in settings.PROP_SETTINGS:
        declared = DeploymentConfig.__annotations__[setting.field].replace("'", '"')
        typed = EcrFleetAuthProps.__annotations__[setting.field].__forward_arg__.replace("'", '"')
        assert typed == ("Sequence[str]" if declared == "tuple[str, ...]" else declared), setting.field


def test_props_left_out_take_the_tables_defaults() -> None:
    from_props = DeploymentConfig.from_props({}, name="EcrFleetAuth")
    assert from_props == DeploymentConfig.from_context(lambda key: None)


def test_the_apps_context_goes_through_the_props_unchanged() -> None:
    context = {"targetTagValues": "a,b", "waitSeconds": "120", "newInstances": "false", "stackName": "Fleet"}
    config = DeploymentConfig.from_context(context.get)
    assert DeploymentConfig.from_props(config.props(), name=config.stack_name) == config
    assert config.props()["target_tag_values"] == ("a", "b")
    assert "stack_name" not in config.props() and "regions" not in config.props()
