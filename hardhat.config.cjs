// Hardhat: a local JSON-RPC EVM node for gridex's integration tests and the
// settlement benchmark (contracts/devnode.py starts it on 127.0.0.1). No
// Solidity is compiled here and nothing is fetched from the network.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      hardfork: "prague",
      // Hardhat's documented development mnemonic; the accounts are public test keys.
      accounts: { mnemonic: "test test test test test test test test test test test junk", count: 4 },
      mining: { auto: true, interval: 0 },
      loggingEnabled: false,
    },
  },
  // No Solidity sources: point Hardhat at an empty place so it never compiles.
  paths: { sources: "./.hardhat-cache/sources", cache: "./.hardhat-cache", artifacts: "./.hardhat-cache/artifacts" },
};
