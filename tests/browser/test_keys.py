"""The keys of every page (issue 21.3): "?" or the header's "Keys ?" lists what the keyboard does there."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A page's own keys, beside the ones every page lists (Tab, Enter, ?).
OWN = {
    "run-": ["next / previous decision", "search the decisions' text"],
    "replay-": ["play / pause", "previous / next step"],
    "cells": ["the heatmap as a table"],
    "trace": ["previous / next node of the tree", "open / close a branch"],
}


def shown(locator, visible: bool = True) -> bool:
    """Whether the locator comes to be visible (or hidden), waiting for it rather than looking once."""
    try:
        if visible:
            expect(locator).to_be_visible()
        else:
            expect(locator).to_be_hidden()
    except AssertionError:
        return False
    return True


def test_question_mark_lists_the_keys_of_every_page_and_esc_closes_the_list(page, site_pages):
    missing = []
    for name, path in site_pages:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        page.locator("body").click(position={"x": 1, "y": 1})  # focus the page, not an input
        page.keyboard.press("?")
        dialog = page.locator("#keys-help")
        if not shown(dialog):
            missing.append(f"{name}: ? opened nothing")
            continue
        text = dialog.inner_text()
        wanted = ["next / previous link or control", "this list"]
        wanted += [k for prefix, keys in OWN.items() if name.startswith(prefix) for k in keys]
        missing += [f"{name}: no {w!r}" for w in wanted if w not in text]
        page.keyboard.press("Escape")
        if not shown(dialog, visible=False):
            missing.append(f"{name}: Esc left the list open")
    assert not missing, "\n".join(missing)


def test_the_header_button_opens_the_same_list(page, site_pages):
    page.goto(site_pages[0][1])
    page.get_by_role("button", name="Keys ?").click()
    expect(page.locator("#keys-help")).to_be_visible()
