"""The account pages: a temporary password leads to the change-password page and nowhere else;
admins manage users and tokens on /users (over HTTP, and once in a real browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.auth.service import add_user, create_token

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the browser fixture skips the browser test (and fails it in CI)
    Page = expect = None  # type: ignore[assignment,misc]

from support.browser import PASSWORD

ROOT = "/conveyor"
TEMPORARY = "printed at first start"
NEW_PASSWORD = "my very own secret"


@pytest.fixture
def app(installation):  # type: ignore[no-untyped-def]
    with installation.sessions.begin() as session:
        add_user(session, "ada", PASSWORD, "admin")
        add_user(session, "vic", PASSWORD, "viewer")
        add_user(session, "first", TEMPORARY, "admin", must_change_password=True)
        create_token(session, "<b>nightly</b>", "operator")
    return create_app(installation, auth_required=True, root_path=ROOT)


def _signed_in(app, name: str, password: str = PASSWORD) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app, root_path=ROOT)
    me = client.post(f"{ROOT}/api/v1/auth/login", json={"name": name, "password": password})
    assert me.status_code == 200
    client.headers["X-CSRF-Token"] = me.json()["csrf_token"]
    return client


def test_a_temporary_password_leads_to_the_password_page(app) -> None:  # type: ignore[no-untyped-def]
    first = _signed_in(app, "first", TEMPORARY)
    for page in ("/", "/items", "/users", "/endpoints"):
        response = first.get(ROOT + page, follow_redirects=False)
        assert response.status_code == 303, page
        assert response.headers["location"].startswith(f"{ROOT}/account/password?next=")
    poll = first.get(f"{ROOT}/ui/items", headers={"HX-Request": "true"})
    assert poll.headers["HX-Redirect"].startswith(f"{ROOT}/account/password")
    page = first.get(f"{ROOT}/account/password?next=//evil.example/")
    assert page.status_code == 200 and "Choose your own before you continue" in page.text
    assert 'data-next="/conveyor/"' in page.text
    stranger = TestClient(app, root_path=ROOT).get(
        f"{ROOT}/account/password", follow_redirects=False
    )
    assert stranger.status_code == 303


def test_only_admins_see_the_users_page(app) -> None:  # type: ignore[no-untyped-def]
    viewer = _signed_in(app, "vic")
    refused = viewer.get(f"{ROOT}/users")
    assert refused.status_code == 403 and "managed by admins" in refused.text
    assert 'href="/conveyor/users"' not in viewer.get(f"{ROOT}/").text
    assert 'href="/conveyor/account/password"' in viewer.get(f"{ROOT}/").text
    admin = _signed_in(app, "ada")
    page = admin.get(f"{ROOT}/users")
    assert page.status_code == 200
    for text in ('data-user="vic"', "must change password", "&lt;b&gt;nightly&lt;/b&gt;"):
        assert text in page.text
    assert "<b>nightly</b>" not in page.text


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conveyor.db'}"  # pages only: tests/api/test_users.py runs both


@pytest.fixture
def page(browser) -> Page:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def test_first_login_changes_the_password_then_the_admin_manages_users(  # type: ignore[no-untyped-def]
    serve, page: Page, screenshots
) -> None:
    server = serve(controller=False)
    with server.installation.sessions.begin() as session:
        add_user(session, "first", TEMPORARY, "admin", must_change_password=True)
    page.goto(server.url + "/users")
    page.fill("input[name=name]", "first")
    page.fill("input[name=password]", TEMPORARY)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server.url}/account/password?next=%2Fconveyor%2Fusers")
    page.fill("input[name=current]", TEMPORARY)
    page.fill("input[name=new]", NEW_PASSWORD)
    page.fill("input[name=again]", NEW_PASSWORD)
    page.click("#password-form button[type=submit]")
    expect(page).to_have_url(f"{server.url}/users")
    screenshots(page, "users")
    row = page.locator('tr[data-user="vic"]')
    row.locator("select").select_option("operator")
    expect(page.locator("#toasts")).to_contain_text("role: operator")
    page.reload()
    expect(page.locator('tr[data-user="vic"] select')).to_have_value("operator")
    page.locator('tr[data-user="vic"] button[data-user-action="reset"]').click()
    expect(page.locator("#secret")).to_be_visible()
    generated = page.locator("#secret-value").text_content()
    assert generated and len(generated) >= 20
    page.fill("#new-token input[name=name]", "ci")
    page.fill("#new-token input[name=expires_in]", "7d")
    page.click("#new-token button[type=submit]")
    expect(page.locator("#secret-value")).to_contain_text("cvy_")
    page.reload()
    page.locator("tr[data-token] button[data-revoke]").first.click()
    expect(page.locator("#toasts")).to_contain_text("token revoked")
    page.reload()
    expect(page.locator("tr[data-token] >> text=revoked")).to_have_count(1)
