"""A client generated from the served app's OpenAPI description fires the pixel and follows a
tracking link, as an integrator's would: openapi-python-client, into a temporary directory."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from piccolo.engine.base import Engine

from models.store.tables import Click, Conversion
from models.tracking.offers import create_offer
from tests.served_app import ServedApp, served_app
from tests.support import new_click, new_link

GENERATOR = str(Path(sys.executable).with_name("openapi-python-client"))
PACKAGE = "conversion_api_client"


@pytest.fixture
def served(db: Engine, tmp_path: Path) -> Iterator[ServedApp]:
    with served_app({"DATABASE_URL": os.environ["DATABASE_URL"]}, tmp_path / "serve.log") as app:
        yield app


@pytest.fixture
def client_package(served: ServedApp, tmp_path: Path) -> Iterator[ModuleType]:
    """The generated package, importable for the test's duration."""
    generated = tmp_path / "generated"
    config = tmp_path / "client.yaml"
    # No formatting pass over the generated code: nothing reads it but this test.
    config.write_text("post_hooks: []\n")
    subprocess.run(
        [
            GENERATOR,
            "generate",
            "--url",
            f"{served.base_url}/schema/openapi.json",
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(generated / PACKAGE),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(generated))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(generated))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_generated_client_fires_the_pixel(
    served: ServedApp, client_package: ModuleType
) -> None:
    fire = _module("api.pixel.convert_click_id_fire")
    models = _module("models")
    click_id = await new_click()

    async with client_package.Client(base_url=served.base_url) as client:
        response = await fire.asyncio_detailed(
            click_id,
            client=client,
            type_=models.ConvertClickIdFireType.DEPOSIT,
            amount="40.00",
            currency=models.ConvertClickIdFireCurrency.EUR,
            transaction_id="order-1842",
        )
        refused = await fire.asyncio_detailed(
            click_id,
            client=client,
            type_=models.ConvertClickIdFireType.INSTALL,
            player_id="p\x0177",
        )

    assert response.status_code == 202
    conversion = await Conversion.objects().where(Conversion.click == click_id).first()
    assert (conversion.amount_minor, conversion.currency) == (4000, "eur")
    # The error body is read as the document's ErrorBody.
    assert refused.status_code == 422
    assert [error.code for error in refused.parsed.errors] == ["control_character"]
    assert await Conversion.count() == 1


async def test_a_generated_client_follows_and_checks_a_tracking_link(
    served: ServedApp, client_package: ModuleType
) -> None:
    follow = _module("api.tracking.track_tracking_id_follow")
    check = _module("api.tracking.track_tracking_id_check")
    models = _module("models")
    offer = await create_offer("Welcome bonus", "https://operator.example/welcome?c={click_id}")
    link = await new_link(offer.id, "partner-42")

    async with client_package.Client(base_url=served.base_url) as client:
        checked = await check.asyncio_detailed(link.id, client=client, s1="spring")
        clicks_after_check = await Click.count()
        followed = await follow.asyncio_detailed(
            link.id, client=client, type_=models.TrackTrackingIdFollowType.SEO, s1="spring"
        )

    assert (checked.status_code, clicks_after_check) == (200, 0)
    assert followed.status_code == 302
    click_id = uuid.UUID(
        followed.headers["location"].removeprefix("https://operator.example/welcome?c=")
    )
    click = await Click.objects().where(Click.id == click_id).first()
    assert (click.type, click.s1) == ("seo", "spring")
