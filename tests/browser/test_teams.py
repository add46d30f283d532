"""The team switcher, in Chromium: a member sees the team's keys masked and nothing to
manage them with; an owner manages them from the same page."""

import pytest

from byok.models import TeamRole, UserAPIKey

from factories import KeyUsageFactory, TeamAPIKeyFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team():
    return TeamFactory(name="Acme", owner=UserFactory())


@pytest.fixture
def team_key(team, openai_secret):
    owner = team.byok_memberships.get(role=TeamRole.OWNER).user
    return TeamAPIKeyFactory(team=team, actor=owner, credentials=openai_secret, nickname="Shared")


def test_a_member_switches_to_the_team_and_sees_its_key_masked(
    page, expect, signed_in, dashboard, team, team_key, openai_secret
):
    team.add_member(signed_in, TeamRole.MEMBER)
    KeyUsageFactory(key=team_key, user=signed_in, calls=2)
    page.goto(dashboard)
    expect(page.locator("[data-byok-key]")).to_have_count(0)  # none of their own

    page.get_by_role("navigation", name="Whose keys").get_by_role("link", name="Acme").click()

    expect(page).to_have_url(f"{page.url.split('?')[0]}?team={team.pk}")
    switcher = page.get_by_role("navigation", name="Whose keys")
    expect(switcher.get_by_role("link", name="Acme")).to_have_attribute("aria-current", "page")
    row = page.locator(f'[data-byok-key="{team_key.pk}"]')
    expect(row.locator("[data-byok-value]")).to_have_text("sk-proj-…abcd")
    expect(row.locator(".byok-key-name")).to_have_text("Shared")
    expect(row.locator("[data-byok-in-use]")).to_have_text("In use")
    expect(row.locator("[data-byok-my-calls]")).to_have_text("used by 2 calls of yours")
    # Nothing to show, copy, test, remove or add.
    expect(row.get_by_role("button")).to_have_count(0)
    expect(row.get_by_role("link")).to_have_count(0)
    expect(page.locator("[data-byok-open], [data-byok-reveal], [data-byok-copy]")).to_have_count(0)
    assert openai_secret not in page.content()

    # The category tabs filter the team's grid and keep the team.
    page.get_by_role("navigation", name="Categories").get_by_role(
        "link", name="AI", exact=True
    ).click()
    expect(page.locator("#byok-service-openai")).to_be_visible()
    assert f"team={team.pk}" in page.url


def test_an_owner_removes_a_team_key_with_the_confirm_dialog(
    page, expect, signed_in, dashboard, team, team_key
):
    team.add_member(signed_in, TeamRole.OWNER)
    page.goto(f"{dashboard}?team={team.pk}")
    page.locator(f'[data-byok-key="{team_key.pk}"]').get_by_role("link", name="Remove").click()
    page.locator("#byok-confirm").get_by_role("button", name="Remove").click()

    expect(page.locator(".byok-toast-success")).to_have_text(
        "The key was removed and its secret erased."
    )
    expect(page.locator("[data-byok-key]")).to_have_count(0)
    assert f"team={team.pk}" in page.url
    assert UserAPIKey.objects.get(pk=team_key.pk).deleted_at is not None
