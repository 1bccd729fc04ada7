"""What is in an image: its layers applied in memory (whiteouts, opaque directories, links),
the files detectors want kept, and the OS and language packages they describe.

`take_inventory(layers)` is the one entry point; each detector is its own module and a pure
function from the kept files to packages (`detector.Detector`), listed in `registry`."""

from portside.scan.inventory.take import take_inventory

__all__ = ["take_inventory"]
