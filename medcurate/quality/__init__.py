"""Generic data-quality steps: markup clean-up, near-duplicate removal and decontamination
against evaluation sets. Each step records what it changed or dropped (row ids only) in
``manifest["stats"]["quality"]``; the card shows it in its Quality section."""
