"""Fast, generic decoding of raw event logs against any set of ABIs.

The index reads logs straight from ``eth_getLogs``' JSON (hex strings, no web3 formatters) and
decodes them here: ``topic0`` picks the event, indexed arguments come from the topics (dynamic
indexed types stay as their 32-byte hash, as the EVM stores them), the rest from ``data``.
Precomputing one :class:`EventSpec` per event keeps decoding to one ``eth_abi`` call per log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import event_signature_to_log_topic
from eth_utils.address import to_checksum_address

from kizuna.chain.reverts import abi_type_string

_STATIC_INDEXED = ("address", "bool", "uint", "int", "bytes")


def _is_dynamic(abi_type: str) -> bool:
    return abi_type in ("string", "bytes") or abi_type.endswith("]") or abi_type.startswith("(")


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event of one ABI: name, topic0, and how to decode each argument."""

    name: str
    topic0: bytes
    names: tuple[str, ...]
    types: tuple[str, ...]
    indexed: tuple[bool, ...]
    anonymous: bool = False

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.types)})"

    @property
    def data_types(self) -> list[str]:
        return [t for t, ix in zip(self.types, self.indexed, strict=True) if not ix]


def event_specs(abi: Iterable[Mapping[str, Any]]) -> list[EventSpec]:
    """Every non-anonymous event of an ABI."""
    specs: list[EventSpec] = []
    for entry in abi:
        if entry.get("type") != "event" or entry.get("anonymous"):
            continue
        inputs = entry.get("inputs", [])
        types = tuple(abi_type_string(i) for i in inputs)
        signature = f"{entry['name']}({','.join(types)})"
        specs.append(EventSpec(
            name=str(entry["name"]),
            topic0=bytes(event_signature_to_log_topic(signature)),
            names=tuple(str(i.get("name") or f"arg{n}") for n, i in enumerate(inputs)),
            types=types,
            indexed=tuple(bool(i.get("indexed")) for i in inputs),
        ))
    return specs


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """A decoded log: which contract and event, its arguments by name, and where it was."""

    contract: str
    address: str
    name: str
    args: Mapping[str, Any]
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    topics: tuple[bytes, ...]
    data: bytes


def _unhex(value: str | bytes) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def _int(value: str | int) -> int:
    """A JSON-RPC quantity (hex string) or an already-decoded int."""
    return value if isinstance(value, int) else int(value, 16)


def _topic_value(abi_type: str, topic: bytes) -> Any:
    if _is_dynamic(abi_type):
        return topic  # the keccak of the value; the value itself is not in the log
    (value,) = abi_decode([abi_type], topic)
    return _shape(abi_type, value)


def _shape(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type.endswith("]") and abi_type.startswith("address"):
        return [to_checksum_address(v) for v in value]
    if isinstance(value, tuple):
        return list(value)
    return value


class EventDecoder:
    """Decodes logs of known contracts: ``{address: (contract name, abi)}``."""

    def __init__(self, contracts: Mapping[str, tuple[str, Iterable[Mapping[str, Any]]]]) -> None:
        self._contracts: dict[str, str] = {}
        self._specs: dict[tuple[str, bytes], EventSpec] = {}
        for address, (name, abi) in contracts.items():
            key = address.lower()
            self._contracts[key] = name
            for spec in event_specs(abi):
                self._specs[(key, spec.topic0)] = spec

    @property
    def addresses(self) -> list[str]:
        return sorted(to_checksum_address(a) for a in self._contracts)

    def spec(self, contract_name: str, event_name: str) -> EventSpec:
        for (address, _), spec in self._specs.items():
            if spec.name == event_name and self._contracts[address] == contract_name:
                return spec
        raise KeyError(f"{contract_name}.{event_name}")

    def decode_raw(self, log: Mapping[str, Any]) -> DecodedEvent | None:
        """Decode one log as JSON-RPC returns it (hex strings) or as web3 formats it.

        ``None`` for a log of an unknown contract or event.
        """
        address = str(log["address"]).lower()
        topics = tuple(_unhex(t) for t in log["topics"])
        if not topics:
            return None
        spec = self._specs.get((address, topics[0]))
        if spec is None:
            return None
        data = _unhex(log["data"])
        values = iter(abi_decode(spec.data_types, data)) if spec.data_types else iter(())
        indexed_topics = iter(topics[1:])
        args: dict[str, Any] = {}
        for name, abi_type, is_indexed in zip(spec.names, spec.types, spec.indexed, strict=True):
            if is_indexed:
                args[name] = _topic_value(abi_type, next(indexed_topics))
            else:
                args[name] = _shape(abi_type, next(values))
        return DecodedEvent(
            contract=self._contracts[address],
            address=to_checksum_address(address),
            name=spec.name,
            args=args,
            block_number=_int(log["blockNumber"]),
            block_hash=_unhex(log["blockHash"]),
            tx_hash=_unhex(log["transactionHash"]),
            log_index=_int(log["logIndex"]),
            topics=topics,
            data=data,
        )


__all__ = ["DecodedEvent", "EventDecoder", "EventSpec", "event_specs"]
