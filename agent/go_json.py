"""Go's encoding/json, which docker decodes its config file with: what it reads, and how.

- only the first JSON value is read (what follows it is never looked at); an empty file is fine;
  nesting deeper than 10000 levels is an error (Go's maxNestingDepth); strict syntax otherwise;
- a value of the wrong type for a typed field is an error, though decoding goes on;
- unknown keys are ignored, `null` is accepted anywhere, object keys match field names
  case-insensitively (Go's fold: also U+017F and U+212A), repeated map fields merge.
Values keep where they stand in the file's text (`span`), so a rewrite copies what it does not
edit byte for byte. Types are described as data (go_field, go_map, go_list), with the versions of
the program that has each field."""

import json
import re

# Go's encoding/json refuses deeper nesting ("exceeded max depth", scanner.go maxNestingDepth).
MAX_JSON_DEPTH = 10000


class ConfigRejected(Exception):
    """docker's loader would fail on the file (the message says why, in docker's terms)."""


class JsonObject(list):
    """A JSON object as its (key, value) pairs: order and repeated keys kept, as Go's decoder sees them.

    `span` is where it stands in the file's text, so that a rewrite copies what it does not edit
    byte for byte (None once edited, or for a new one)."""

    span = None


class JsonArray(list):
    span = None


class JsonNumber(object):
    """A JSON number as written: docker types no number, and a rewrite keeps unknown keys' text."""

    def __init__(self, text):
        self.text = text


JSON_SPACE = re.compile(r"[ \t\n\r]*")
JSON_SCALAR = re.compile(r"(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)|true|false|null")
JSON_LITERALS = {"true": True, "false": False, "null": None}
EMPTY_DOCUMENT = object()


def skip_space(text, pos):
    return JSON_SPACE.match(text, pos).end()


def json_key(text, pos):
    """(key, position after its colon) of an object member starting at pos."""
    pos = skip_space(text, pos)
    if text[pos : pos + 1] != '"':
        raise ValueError("object key expected at %d" % pos)
    key, pos = json.decoder.scanstring(text, pos + 1, True)
    pos = skip_space(text, pos)
    if text[pos : pos + 1] != ":":
        raise ValueError("colon expected at %d" % pos)
    return key, pos + 1


def parse_json(text, pos):
    """(value, end) of the JSON value at text[pos:], as Go's encoding/json reads it: strict syntax
    (no NaN, no trailing comma, no control character in a string), nesting up to Go's limit. Iterative:
    Python's own decoder recurses, and Python 3.12 stops it near 1,500 levels whatever the limit."""
    stack = []  # [container, start, pending key] of each open array or object
    while True:  # here a value is due
        pos = skip_space(text, pos)
        char = text[pos : pos + 1]
        if char in ("{", "["):
            if len(stack) == MAX_JSON_DEPTH:
                raise ValueError("exceeded max depth")
            entry = [JsonObject() if char == "{" else JsonArray(), pos, None]
            stack.append(entry)
            pos = skip_space(text, pos + 1)
            if text[pos : pos + 1] != ("}" if char == "{" else "]"):
                if char == "{":
                    entry[2], pos = json_key(text, pos)
                continue
            pos += 1
            value = stack.pop()[0]
            value.span = (entry[1], pos)
        elif char == '"':
            value, pos = json.decoder.scanstring(text, pos + 1, True)
        else:
            match = JSON_SCALAR.match(text, pos)
            if not match:
                raise ValueError("value expected at %d" % pos)
            pos = match.end()
            value = JsonNumber(match.group()) if match.group(1) else JSON_LITERALS[match.group()]
        while stack:  # the value goes into the innermost open container; close those that end here
            entry = stack[-1]
            container = entry[0]
            is_object = isinstance(container, JsonObject)
            container.append((entry[2], value) if is_object else value)
            pos = skip_space(text, pos)
            char = text[pos : pos + 1]
            if char == ",":
                pos += 1
                if is_object:
                    entry[2], pos = json_key(text, pos)
                break
            if char != ("}" if is_object else "]"):
                raise ValueError("comma or end expected at %d" % pos)
            pos += 1
            value = stack.pop()[0]
            value.span = (entry[1], pos)
        else:
            return value, pos


def parse_json_document(text):
    """(first JSON value, where it ends) of text as Go's json.Decoder reads it; EMPTY_DOCUMENT for
    whitespace only. The text is the file decoded with surrogateescape: bytes survive a rewrite."""
    start = skip_space(text, 0)
    if start == len(text):
        return EMPTY_DOCUMENT, start
    try:
        return parse_json(text, start)
    except ValueError as error:
        raise ConfigRejected("not valid JSON (%s)" % str(error).split(":")[0]) from None


STRING = "string"


def go_map(kind):
    return ("map", kind)


def go_list(kind):
    return ("list", kind)


def go_field(name, kind=STRING, since=None, until=None):
    """A struct field: its JSON name and type, and the docker versions [since, until) that have it."""
    return (name, kind, since, until)


def field_exists(field, version):
    """Whether docker `version` ((major, minor)) types this field."""
    _, _, since, until = field
    return (since is None or version >= since) and (until is None or version < until)


def go_fold(name):
    """Go's encoding/json key folding as far as ASCII field names go: ASCII case, and the two
    non-ASCII runes that fold into ASCII letters (U+017F long s, U+212A Kelvin sign)."""
    out = []
    for char in name:
        if char == "\u017f":
            out.append("S")
        elif char == "\u212a":
            out.append("K")
        else:
            out.append(char.upper() if char < "\x80" else char)
    return "".join(out)


def json_kind(value):
    if isinstance(value, JsonObject):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, JsonNumber):
        return "number"
    return "string"


def go_zero(kind):
    if kind == STRING:
        return ""
    return {} if kind[0] == "struct" else None


def match_field(fields, key):
    """The struct field a JSON key sets: an exact name first, else a case-folded one (Go's rule)."""
    for field in fields:
        if field[0] == key:
            return field
    folded = go_fold(key)
    for field in fields:
        if go_fold(field[0]) == folded:
            return field
    return None


def go_decode(value, kind, current, path, version, *, reader="docker"):
    """What Go's json.Unmarshal makes of value for a field of `kind`, starting from `current`; `reader`
    names the program in what a type mismatch says."""
    if value is None:  # null leaves strings and structs alone, and makes maps, slices, pointers nil
        return current if kind == STRING or kind[0] == "struct" else None
    if kind == STRING:
        if isinstance(value, str):
            return value
        raise mismatch(value, path, "string", reader)
    tag = kind[0]
    if tag == "map":
        if not isinstance(value, JsonObject):
            raise mismatch(value, path, "a map", reader)
        result = current if current is not None else {}
        for key, item in value:  # each element starts from zero; a repeated key replaces the earlier one
            result[key] = go_decode(item, kind[1], go_zero(kind[1]), path + "." + key, version, reader=reader)
        return result
    if tag == "list":
        if isinstance(value, JsonObject) or not isinstance(value, list):
            raise mismatch(value, path, "a list", reader)
        return [
            go_decode(item, kind[1], go_zero(kind[1]), path + "[]", version, reader=reader) for item in value
        ]
    if tag == "pointer":
        return go_decode(value, kind[1], current if current is not None else {}, path, version, reader=reader)
    if not isinstance(value, JsonObject):
        raise mismatch(value, path, "an object", reader)
    fields = [field for field in kind[2] if field_exists(field, version)]
    result = dict(current)
    for key, item in value:
        field = match_field(fields, key)
        if field is not None:  # unknown keys are ignored
            name = field[0]
            result[name] = go_decode(
                item, field[1], result.get(name, go_zero(field[1])), path + "." + name, version, reader=reader
            )
    return result


def mismatch(value, path, expected, reader="docker"):
    return ConfigRejected(
        "%s: %s expects %s, the file has a JSON %s" % (path.lstrip("."), reader, expected, json_kind(value))
    )
