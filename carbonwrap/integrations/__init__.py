"""Ready callbacks that report training progress to carbonwrap (CARBONWRAP_PROGRESS):
`keras.CarbonwrapProgress`, `lightning.CarbonwrapProgress`, `transformers.CarbonwrapProgress`.
Each module imports its framework when it is imported itself, never at `import carbonwrap`."""
