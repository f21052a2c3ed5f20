"""Regular expressions that the API schema declares and the services apply, written to mean the
same in Python and in JSON Schema's (ECMA) reading: no `\\s` (Python's and ECMA's differ), and a
pattern is checked with `re.fullmatch` or ends in `$(?!\\n)` (Python's `$` also matches before a
final newline)."""

# What str.isspace() holds true, i.e. what str.strip() removes.
SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL = r"^[^\x00]*$"  # PostgreSQL refuses a NUL, even in a lookup
# No NUL, and something that is not whitespace: a text that str.strip() leaves non-empty.
NOT_BLANK = rf"^[^\x00]*[^{SPACE}\x00][^\x00]*$"
