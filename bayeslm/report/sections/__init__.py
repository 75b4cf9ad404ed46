"""What each section of a report computes, as plain data for the JSON (no HTML here)."""
