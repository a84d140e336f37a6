"""The construct's props are the settings table's rows: generated from it (make props), typed, with
the table's defaults, read back through the table's validation."""

from __future__ import annotations

import subprocess
import sys
import typing
from collections.abc import Sequence

from ecr_fleet_auth.shared import settings
from ecr_fleet_auth_cdk.config import DeploymentConfig
from ecr_fleet_auth_cdk.props import EcrFleetAuthProps
from ecr_fleet_auth_cdk.resource_props import RESOURCE_PROPS
from tests.support.docs import rendered_page, table_rows
from tools import generate_props


def test_the_props_module_is_what_the_table_gives() -> None:
    """infra/props.py is generated; run `make props` after changing the table."""
    for path, render in generate_props.GENERATED.items():
        assert path.read_text(encoding="utf-8") == render(), f"{path.name}: run make props"
    assert generate_props.main(["--check"]) == 0


def test_the_props_reference_lists_every_prop_with_its_default_and_key() -> None:
    rows = {row[0]: row for row in table_rows(rendered_page("reference/props.md"))}
    for setting in settings.PROP_SETTINGS:
        _, _, default, accepted, meaning, key = rows[f"`{setting.field}`"]
        assert (default, key) == (f"`{setting.default!r}`", f"`{setting.key}`"), setting.field
        # table_rows gives a cell as the page shows it: a `\|` escape is a plain `|`.
        assert accepted == setting.form.replace("\\|", "|")
        assert meaning == setting.doc.replace("](#", "](configuration.md#").replace("\\|", "|"), setting.field
    for resource in RESOURCE_PROPS:
        assert rows[f"`{resource.name}`"] == [f"`{resource.name}`", f"`{resource.type}`", resource.doc]
    assert set(rows) == {f"`{name}`" for name in EcrFleetAuthProps.__annotations__}


def test_every_prop_is_a_setting_or_a_resource_of_the_app_in_the_tables_order() -> None:
    keys = list(EcrFleetAuthProps.__annotations__)
    assert keys == [s.field for s in settings.PROP_SETTINGS] + [p.name for p in RESOURCE_PROPS]
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


def test_the_props_types_can_be_read_at_run_time() -> None:
    """typing.get_type_hints evaluates every annotation (frameworks and editors' runtime helpers do),
    so each name an annotation uses must exist when it runs, the CDK's modules included."""
    from aws_cdk import aws_iam, aws_kms, aws_sns  # noqa: PLC0415 - compared with what the hints give

    hints = typing.get_type_hints(EcrFleetAuthProps)
    assert set(hints) == set(EcrFleetAuthProps.__annotations__)
    assert hints["topic"] is aws_sns.ITopic and hints["topic_key"] is aws_kms.IKey
    assert hints["permissions_boundary"] is aws_iam.IManagedPolicy
    assert hints["instance_roles"] == Sequence[aws_iam.IRole]
    assert hints["target_tag_key"] is str


def test_importing_the_props_does_not_start_the_cdk() -> None:
    """The docs build reads the props: their module imports the CDK's only when a hint is evaluated."""
    probe = (
        "import sys; from ecr_fleet_auth_cdk.props import EcrFleetAuthProps; "
        "assert not any(m.startswith(('aws_cdk', 'jsii')) for m in sys.modules), sorted(sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_props_docstrings_hold_no_site_anchor() -> None:
    """An editor shows a prop's docstring as text: a link is its label and the repository file it
    points to, never a site anchor like `(#reserved-concurrency)` or a relative `../` page."""
    text = generate_props.PROPS_MODULE.read_text(encoding="utf-8")
    assert "](" not in text and "(#" not in text and "../" not in text
    assert "Reserved concurrency (docs/reference/configuration.md)" in " ".join(text.split())
    assert "Latency and limits (docs/how-it-works/new-instances.md)" in " ".join(text.split())
