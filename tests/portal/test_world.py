"""The portal's test world itself: the signed-in optician lands on their home page."""

from __future__ import annotations

from tests.portal.conftest import World


def test_the_signed_in_optician_lands_on_their_home_page(world: World) -> None:
    home = world.counter.page("/")
    assert home.status_code == 200
    assert "optique@port.test" in home.text
    assert "Optique du Port" in home.text
    assert world.counter.user.csrf_token
    assert world.counter.user.csrf_token in home.text
