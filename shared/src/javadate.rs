//! Java SimpleDateFormat patterns (placeholder; being written).
