// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ConsentLedger} from "../ConsentLedger.sol";
import {IConsentLedger} from "../interfaces/IConsentLedger.sol";
import {IProviderRegistry} from "../interfaces/IProviderRegistry.sol";
import {RecordId, ScopeId} from "../types/Ids.sol";
import {KizunaTest} from "./utils/KizunaTest.t.sol";

/// @dev The JSON and file cheatcodes the test needs (npm's forge-std 1.1.2 `Vm` predates them;
///      cheatcodes are matched by selector, so declaring them here is enough).
interface VmJson {
    function projectRoot() external view returns (string memory);
    function readFile(string calldata path) external view returns (string memory);
    function keyExistsJson(string calldata json, string calldata key) external view returns (bool);
    function parseJsonString(string calldata json, string calldata key) external pure returns (string memory);
    function parseJsonUint(string calldata json, string calldata key) external pure returns (uint256);
    function parseJsonAddress(string calldata json, string calldata key) external pure returns (address);
    function parseJsonBytes32(string calldata json, string calldata key) external pure returns (bytes32);
    function parseJsonBytes(string calldata json, string calldata key) external pure returns (bytes memory);
    function parseJsonBytes32Array(string calldata json, string calldata key)
        external
        pure
        returns (bytes32[] memory);
    function toString(uint256 value) external pure returns (string memory);
}

/// @notice The shared EIP-712 vectors (tests/vectors/eip712.json, written by Python, also checked
///         by ethers in tests/node/eip712.test.mjs) against the ledger's own hashing: at the
///         vectors' chain id and verifying address, the ledger's domain separator and type hashes
///         give each vector's struct hash and digest, the digest recovers to the patient, and the
///         ledger accepts every signature in order (nonce 0 then 1 of the same patient).
contract EIP712VectorsTest is KizunaTest {
    VmJson internal constant json = VmJson(address(uint160(uint256(keccak256("hevm cheat code")))));

    bytes4 internal immutable invalidSigner = IConsentLedger.ConsentLedgerInvalidSigner.selector;

    string internal spec;
    ConsentLedger internal atVector;

    function setUp() public override {
        string memory path = string.concat(json.projectRoot(), "/tests/vectors/eip712.json");
        try json.readFile(path) returns (string memory text) {
            spec = text;
        } catch {
            revert(
                "cannot read tests/vectors/eip712.json: foundry.toml needs "
                'fs_permissions = [{ access = "read", path = "./tests/vectors" }]'
            );
        }
        vm.chainId(json.parseJsonUint(spec, ".chainId"));
        super.setUp();
        vm.warp(json.parseJsonUint(spec, ".now"));
        address verifying = json.parseJsonAddress(spec, ".verifyingContract");
        // The ledger's runtime code at the vectors' address: OpenZeppelin's EIP712 rebuilds the
        // domain separator for `address(this)`, so the digests are the ones the vectors hold.
        vm.etch(verifying, address(ledger).code);
        atVector = ConsentLedger(verifying);
    }

    function _key(uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(".vectors[", json.toString(i), "]", field);
    }

    function test_domainSeparator_matchesTheVectors() public view {
        assertEq(atVector.DOMAIN_SEPARATOR(), json.parseJsonBytes32(spec, ".domainSeparator"), "domain separator");
    }

    function test_everyVector_isAcceptedByTheLedgerInOrder() public {
        uint256 count;
        while (json.keyExistsJson(spec, _key(count, ".name"))) {
            _check(count);
            ++count;
        }
        assertEq(count, 7, "vector count");
    }

    function test_alteredVector_isRefusedByTheLedger() public {
        // The first vector (a Grant), with its expiry moved by one second: another signer.
        address patient = json.parseJsonAddress(spec, _m(0, "patient"));
        address provider_ = json.parseJsonAddress(spec, _m(0, "provider"));
        ScopeId scopeId = ScopeId.wrap(json.parseJsonBytes32(spec, _m(0, "scopeId")));
        uint64 expiresAt = uint64(json.parseJsonUint(spec, _m(0, "expiresAt"))) + 1;
        uint256 deadline = json.parseJsonUint(spec, _m(0, "deadline"));
        bytes memory signature = json.parseJsonBytes(spec, _key(0, ".signature"));
        vm.prank(relayer);
        try atVector.grantBySig(patient, provider_, scopeId, expiresAt, deadline, signature) {
            revert("an altered vector was accepted");
        } catch (bytes memory reason) {
            assertEq(uint256(uint32(bytes4(reason))), uint256(uint32(invalidSigner)), "error");
        }
        assertFalse(atVector.hasAccess(patient, provider_, scopeId), "no grant");
    }

    function _check(uint256 i) internal {
        string memory primary = json.parseJsonString(spec, _key(i, ".typedData.primaryType"));
        bytes32 structHash = _structHash(i, primary);
        assertEq(structHash, json.parseJsonBytes32(spec, _key(i, ".structHash")), "struct hash");
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", atVector.DOMAIN_SEPARATOR(), structHash));
        assertEq(digest, json.parseJsonBytes32(spec, _key(i, ".digest")), "digest");
        bytes memory signature = json.parseJsonBytes(spec, _key(i, ".signature"));
        address signer = json.parseJsonAddress(spec, _key(i, ".signer"));
        assertEq(_recover(digest, signature), signer, "recovered signer");
        _submit(i, primary, signature);
    }

    function _m(uint256 i, string memory field) internal pure returns (string memory) {
        return _key(i, string.concat(".typedData.message.", field));
    }

    function _structHash(uint256 i, string memory primary) internal view returns (bytes32) {
        bytes32 kind = keccak256(bytes(primary));
        address patient = json.parseJsonAddress(spec, _m(i, "patient"));
        uint256 nonce = json.parseJsonUint(spec, _m(i, "nonce"));
        uint256 deadline = json.parseJsonUint(spec, _m(i, "deadline"));
        assertEq(nonce, atVector.nonces(patient), "vector nonce is the patient's next nonce");
        if (kind == keccak256("Grant")) {
            return keccak256(
                abi.encode(
                    atVector.GRANT_TYPEHASH(),
                    patient,
                    json.parseJsonAddress(spec, _m(i, "provider")),
                    json.parseJsonBytes32(spec, _m(i, "scopeId")),
                    uint64(json.parseJsonUint(spec, _m(i, "expiresAt"))),
                    nonce,
                    deadline
                )
            );
        }
        if (kind == keccak256("GrantBatch")) {
            bytes32[] memory scopes = json.parseJsonBytes32Array(spec, _m(i, "scopeIds"));
            return keccak256(
                abi.encode(
                    atVector.GRANT_BATCH_TYPEHASH(),
                    patient,
                    json.parseJsonAddress(spec, _m(i, "provider")),
                    keccak256(abi.encodePacked(scopes)),
                    uint64(json.parseJsonUint(spec, _m(i, "expiresAt"))),
                    nonce,
                    deadline
                )
            );
        }
        if (kind == keccak256("Revoke")) {
            return keccak256(
                abi.encode(
                    atVector.REVOKE_TYPEHASH(),
                    patient,
                    json.parseJsonAddress(spec, _m(i, "provider")),
                    json.parseJsonBytes32(spec, _m(i, "scopeId")),
                    nonce,
                    deadline
                )
            );
        }
        if (kind == keccak256("RegisterBatch")) {
            return keccak256(
                abi.encode(
                    atVector.REGISTER_BATCH_TYPEHASH(),
                    patient,
                    json.parseJsonBytes32(spec, _m(i, "root")),
                    uint32(json.parseJsonUint(spec, _m(i, "count"))),
                    nonce,
                    deadline
                )
            );
        }
        assertTrue(kind == keccak256("RegisterRecord"), "known primary type");
        return keccak256(
            abi.encode(
                atVector.REGISTER_RECORD_TYPEHASH(),
                patient,
                json.parseJsonBytes32(spec, _m(i, "recordId")),
                json.parseJsonBytes32(spec, _m(i, "commitment")),
                json.parseJsonBytes32(spec, _m(i, "scopeId")),
                json.parseJsonBytes32(spec, _m(i, "supersedes")),
                nonce,
                deadline
            )
        );
    }

    /// @dev Relays the vector's signature through the ledger's `...BySig` function: the ledger's
    ///      own `_hashTypedDataV4` + ECDSA must accept it, and the action must take effect.
    function _submit(uint256 i, string memory primary, bytes memory signature) internal {
        bytes32 kind = keccak256(bytes(primary));
        address patient = json.parseJsonAddress(spec, _m(i, "patient"));
        uint256 deadline = json.parseJsonUint(spec, _m(i, "deadline"));
        uint256 nonceBefore = atVector.nonces(patient);
        vm.prank(relayer);
        if (kind == keccak256("Grant")) {
            address provider_ = json.parseJsonAddress(spec, _m(i, "provider"));
            ScopeId scopeId = ScopeId.wrap(json.parseJsonBytes32(spec, _m(i, "scopeId")));
            uint64 expiresAt = uint64(json.parseJsonUint(spec, _m(i, "expiresAt")));
            atVector.grantBySig(patient, provider_, scopeId, expiresAt, deadline, signature);
            assertTrue(atVector.hasAccess(patient, provider_, scopeId), "granted");
        } else if (kind == keccak256("GrantBatch")) {
            address provider_ = json.parseJsonAddress(spec, _m(i, "provider"));
            bytes32[] memory raw = json.parseJsonBytes32Array(spec, _m(i, "scopeIds"));
            ScopeId[] memory scopes = new ScopeId[](raw.length);
            for (uint256 k; k < raw.length; ++k) {
                scopes[k] = ScopeId.wrap(raw[k]);
            }
            uint64 expiresAt = uint64(json.parseJsonUint(spec, _m(i, "expiresAt")));
            atVector.grantBatchBySig(patient, provider_, scopes, expiresAt, deadline, signature);
            assertTrue(atVector.hasAccess(patient, provider_, scopes[raw.length - 1]), "batch granted");
        } else if (kind == keccak256("Revoke")) {
            address provider_ = json.parseJsonAddress(spec, _m(i, "provider"));
            ScopeId scopeId = ScopeId.wrap(json.parseJsonBytes32(spec, _m(i, "scopeId")));
            atVector.revokeBySig(patient, provider_, scopeId, deadline, signature);
            assertFalse(atVector.hasAccess(patient, provider_, scopeId), "revoked");
        } else if (kind == keccak256("RegisterBatch")) {
            bytes32 root = json.parseJsonBytes32(spec, _m(i, "root"));
            uint32 count = uint32(json.parseJsonUint(spec, _m(i, "count")));
            atVector.registerBatchBySig(patient, root, count, deadline, signature);
            (address owner,, uint32 stored) = atVector.batchOf(root);
            assertEq(owner, patient, "batch registered to the patient");
            assertEq(stored, count, "batch count");
        } else {
            _submitRecord(i, patient, deadline, signature);
        }
        assertEq(atVector.nonces(patient), nonceBefore + 1, "nonce used");
    }

    function _submitRecord(uint256 i, address patient, uint256 deadline, bytes memory signature) internal {
        RecordId recordId = RecordId.wrap(json.parseJsonBytes32(spec, _m(i, "recordId")));
        bytes32 commitment = json.parseJsonBytes32(spec, _m(i, "commitment"));
        ScopeId scopeId = ScopeId.wrap(json.parseJsonBytes32(spec, _m(i, "scopeId")));
        RecordId supersedes = RecordId.wrap(json.parseJsonBytes32(spec, _m(i, "supersedes")));
        atVector.registerRecordBySig(patient, recordId, commitment, scopeId, supersedes, deadline, signature);
        (address owner,,) = atVector.recordOf(recordId);
        assertEq(owner, patient, "record registered to the patient");
    }

    function _recover(bytes32 digest, bytes memory signature) internal pure returns (address) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        return ecrecover(digest, v, r, s);
    }
}
