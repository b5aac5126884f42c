"""Every chart kind draws exactly the Vega-Lite spec pinned in specs.json, and a valid one.

The fixture was written by ``python -m tests.charts.spec_cases`` before the drawing code was
made cheaper: building the specs differently must not change what Vega-Lite receives.
"""

from __future__ import annotations

import json

import pytest

from tests.charts.spec_cases import FIXTURE, SELECTABLE, cases, normalised, specs

PINNED = json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def drawn(ds):
    return specs(ds)


def test_the_fixture_covers_every_case():
    assert sorted(PINNED) == sorted([*cases(), *(f"{n}_selectable" for n in SELECTABLE)])


@pytest.mark.parametrize("name", sorted(PINNED))
def test_spec_is_unchanged(drawn, name):
    assert drawn[name] == PINNED[name]


@pytest.mark.parametrize("name", sorted(cases()))
def test_spec_is_valid_vega_lite(ds, name):
    # Altair validates the whole spec against the Vega-Lite schema when asked, as at display;
    # a spec that fails raises a SchemaValidationError naming the offending part.
    chart = cases()[name](ds)
    spec = chart.to_dict(validate=True)
    assert normalised(spec) == PINNED[name]
