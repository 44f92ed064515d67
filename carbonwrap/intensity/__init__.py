"""Grid carbon intensity: the offline table, region resolution and (later) live providers."""
