"""Where carbonwrap may write between the bytes of a command's terminal output: not inside an
escape sequence or a UTF-8 character, which a frame of the live view would cut in two. Pure.

Only the bytes from a chunk's last ESC on are looked at (a memrchr away), so the cost does not
grow with the chunk; what a chunk leaves open is carried into the next one as a state."""

PLAIN = 0  # between sequences: a frame may go here (unless a character is cut: `cuts_character`)
ESCAPE = 1  # ESC, perhaps with intermediate bytes (ESC ( B): one more byte ends it
CSI = 2  # ESC [ and parameters: ended by a final byte, 0x40-0x7E
STRING = 3  # OSC, DCS, SOS, PM, APC: ended by BEL or ST (ESC \)

_STRINGS = frozenset(b"]PX^_")


def state_after(state: int, data: bytes | bytearray, end: int) -> int:
    """The state at `data[end]`, given the `state` at `data[0]` (the previous chunk's result).

    ECMA-48 sequences as terminals parse them: ESC, intermediates 0x20-0x2F, a final byte; CSI
    parameters and intermediates 0x20-0x3F, a final byte 0x40-0x7E; a control string up to BEL
    or ESC \\. A sequence longer than its chunk is followed across chunks.
    """
    start = data.rfind(b"\x1b", 0, end)
    if start >= 0:
        state, at = ESCAPE, start + 1
    elif state == STRING:
        return PLAIN if data.find(b"\x07", 0, end) >= 0 else STRING
    else:
        at = 0
    while at < end and state != PLAIN:
        byte = data[at]
        if state == ESCAPE:
            if 0x20 <= byte <= 0x2F:
                at += 1
                continue
            state = CSI if byte == 0x5B else STRING if byte in _STRINGS else PLAIN
            at += 1
        elif state == CSI:
            while at < end and 0x20 <= data[at] <= 0x3F:
                at += 1
            if at == end:
                return CSI
            state, at = PLAIN, at + 1  # the final byte (or a control that cuts it short)
        else:  # STRING, opened after the last ESC: only BEL can end it (ST would be an ESC)
            return PLAIN if data.find(b"\x07", at, end) >= 0 else STRING
    return state


def cuts_character(data: bytes | bytearray, end: int) -> bool:
    """Whether `data[:end]` ends inside a UTF-8 character (a lead byte among the last three
    without all its continuation bytes)."""
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte < 0x80:
            return False
        if byte >= 0xC0:  # a lead byte: 110xxxxx needs 2 bytes, 1110xxxx 3, 11110xxx 4
            return back < (2 if byte < 0xE0 else 3 if byte < 0xF0 else 4)
    return False
