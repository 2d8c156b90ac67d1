"""The engine: item lifecycle, the controller and the executor seam to Ray."""
