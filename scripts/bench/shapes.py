"""Command-line parsing shared by the benchmark scripts."""


def parse_shape(text: str) -> list[int]:
    """Parses `1,3,512,512` into a list of ints (the `--shape` flag of rrun bench too)."""
    return [int(part) for part in text.split(",")]
