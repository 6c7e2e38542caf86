// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title The cheatcodes Kizuna's Solidity tests use
/// @notice The subset of the Foundry/EDR cheatcode interface the tests call, declared here instead
///         of imported from npm's forge-std: its npm release (1.1.2) has no `src/` folder, which
///         Hardhat 3 requires of forge-std, and its `Test` needs ds-test, which npm lacks. Cheatcodes
///         are matched by selector at the well-known address, so this declaration is all a test
///         needs, under forge (`forge test`) and under Hardhat (`npx hardhat test solidity`).
interface Vm {
    function warp(uint256 timestamp) external;
    function roll(uint256 blockNumber) external;
    function chainId(uint256 newChainId) external;
    function etch(address target, bytes calldata code) external;
    function sign(uint256 privateKey, bytes32 digest) external returns (uint8 v, bytes32 r, bytes32 s);
    function addr(uint256 privateKey) external returns (address);
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function expectRevert() external;
    function expectRevert(bytes4 selector) external;
    function expectRevert(bytes calldata revertData) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
    function assume(bool condition) external;
}
