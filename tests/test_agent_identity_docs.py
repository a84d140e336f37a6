"""Which AWS role runs the agent, as the docs tell an operator: what AWS says, and what to attach where.

The SSM agent's maintainer, amazon-ssm-agent #610 (2026): "The instance profile takes precedence:
https://docs.aws.amazon.com/systems-manager/latest/userguide/ssm-agent-technical-details.html#credentials-precedence.
Only if your instance profile do not contain SSM Credentials, then it will use the DHMC credentials."
The agent's ECR calls use the SSM agent's credentials, so the stack's instance policy belongs on the
instance profile's role; only an instance managed through Default Host Management alone needs it on
the DHMC role. The docs said the reverse (that with DHMC the agent always gets the DHMC role).
"""

from __future__ import annotations

import re

from tests.support.template import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_agent_page_says_the_instance_profile_takes_precedence_over_dhmc() -> None:
    page = _flat((DOCS / "how-it-works" / "agent.md").read_text(encoding="utf-8"))
    identity = page[page.index("**Which AWS identity.**") :]
    identity = identity[: identity.index("- **Which users.**")]
    assert "the instance profile takes precedence when it has SSM permissions" in identity
    assert "amazon-ssm-agent #610" in identity and "credentials precedence" in identity
    assert "falls back to the Default Host Management Configuration role" in identity
    assert "Run Command hands the agent the DHMC role rather than the instance profile" not in page


def test_the_deploying_steps_put_the_instance_policy_where_the_agent_finds_its_credentials() -> None:
    page = _flat((DOCS / "deploying.md").read_text(encoding="utf-8"))
    assert "to that same role" in page  # InstancePolicyArn beside AmazonSSMManagedInstanceCore
    assert "DHMC role instead: that role then needs the policy" in page
    readme = _flat((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    assert "Attach the stack's managed policy (output `InstancePolicyArn`) to that role." in readme
