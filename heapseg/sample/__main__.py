"""``python -m heapseg.sample``: generate the sample data (see :mod:`heapseg.sample.command`)."""

from heapseg.sample.command import main

main()
