"""Domain logic. Functions take `*, session`; they flush, the caller commits."""
