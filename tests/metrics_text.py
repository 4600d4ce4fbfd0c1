"""Reading a `/metrics` answer: the Prometheus text format, parsed by the client's parser."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset[tuple[str, str]]]


def parse(text: str) -> dict[Sample, float]:
    """Every sample of the answer, by its name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Mapping[Sample, float], name: str, **labels: str) -> float:
    """One sample's value; 0 for a series not (yet) there, as for a counter never counted."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def names(samples: Mapping[Sample, float]) -> set[str]:
    return {name for name, _ in samples}
