"""Project-wide helpers with no project imports: the bottom layer every package may use."""
