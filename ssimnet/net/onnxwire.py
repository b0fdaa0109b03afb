"""Find tensors stored outside an ONNX model, without the ``onnx`` package.

An ONNX tensor may keep its values in another file (``data_location =
EXTERNAL``), named by a path relative to the model's folder.  ONNX Runtime
resolves that path when it builds a session -- against the working directory
when the model comes as bytes -- so a crafted file could read any file the
user can read into its weights.  ssimnet's exports keep every value inside
the model, so :class:`ssimnet.net.onnxnet.OnnxNetwork` refuses any model
where :func:`external_tensors` finds one.

The model is read at the level of protobuf's wire format, following only the
fields that can hold a tensor (field numbers of ``onnx.proto``):

========================  ===============================================
message                   fields followed
========================  ===============================================
ModelProto                graph (7), functions (25)
GraphProto                node (1), initializer (5), sparse_initializer (15)
NodeProto                 attribute (5)
AttributeProto            t (5), g (6), tensors (10), graphs (11),
                          sparse_tensor (22), sparse_tensors (23)
SparseTensorProto         values (1), indices (2)
FunctionProto             node (7)
TensorProto               external_data (13), data_location (14)
========================  ===============================================

Examples
--------
>>> external_tensors(b"")
0
"""

from __future__ import annotations

__all__ = ["SCHEMA", "external_tensors"]

#: For each message the scan follows: its field number -> the message that field holds.
SCHEMA: dict[str, dict[int, str]] = {
    "ModelProto": {7: "GraphProto", 25: "FunctionProto"},
    "GraphProto": {1: "NodeProto", 5: "TensorProto", 15: "SparseTensorProto"},
    "NodeProto": {5: "AttributeProto"},
    "AttributeProto": {5: "TensorProto", 6: "GraphProto", 10: "TensorProto", 11: "GraphProto",
                       22: "SparseTensorProto", 23: "SparseTensorProto"},
    "SparseTensorProto": {1: "TensorProto", 2: "TensorProto"},
    "FunctionProto": {7: "NodeProto"},
    "TensorProto": {},
}
_EXTERNAL_DATA, _DATA_LOCATION, _EXTERNAL = 13, 14, 1
_MAX_DEPTH = 64  # nested graphs deeper than this are not a network anyone exported


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated or malformed protobuf varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return value, at


def _fields(data: bytes):
    """(field number, wire type, value) of each field of one message: ints for varints, bytes otherwise."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = data[at:at + size], at + size
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at:at + size], at + size
        else:
            raise ValueError(f"protobuf wire type {wire} is not used by ONNX")
        if at > len(data):
            raise ValueError("truncated protobuf message")
        yield number, wire, value


def external_tensors(model: bytes, *, message: str = "ModelProto", _depth: int = 0) -> int:
    """How many tensors of ONNX `model` (its bytes) keep their values outside it.

    Raises
    ------
    ValueError
        If the bytes are not a protobuf message, or nest graphs deeper than 64.

    Examples
    --------
    >>> external_tensors(bytes([0x70, 0x01]), message="TensorProto")  # data_location = EXTERNAL
    1
    """
    if _depth > _MAX_DEPTH:
        raise ValueError(f"graphs nested more than {_MAX_DEPTH} deep")
    follow, count, external = SCHEMA[message], 0, False
    for number, wire, value in _fields(bytes(model)):
        if message == "TensorProto":
            external |= (number == _DATA_LOCATION and wire == 0 and value == _EXTERNAL) or \
                (number == _EXTERNAL_DATA and wire == 2)
        elif number in follow and wire == 2:
            count += external_tensors(value, message=follow[number], _depth=_depth + 1)
    return count + external
