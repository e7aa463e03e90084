"""Pages every role meets: the account page and the error pages, at 360 px and with axe-core."""

from __future__ import annotations

from tests.browser.conftest import check_page, log_in


def test_the_account_page_and_an_error_page_are_readable_and_accessible(page, make):
    email = make.user("superadmin")
    log_in(page, email)
    page.get_by_role("heading", name="Your account").wait_for()
    check_page(page, "account")

    response = page.goto("/developer/apps/app_does_not_exist")
    assert response.status == 404
    check_page(page, "error-not-found")
