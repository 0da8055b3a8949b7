// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  .treatAllWarnings(as: .error),
]

// Swift Testing's macro expansions raise a '@const' warning on this toolchain (6.3.1), so the
// test targets keep strict concurrency but not warnings-as-errors.
let testSettings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

// `SAFESHARD_TARGET_CPU=native swift build -c release` (or an LLVM CPU name such as `haswell` or
// `skylake-avx512`) compiles the quantization kernels for that CPU: 8 or 16 vector lanes instead of
// baseline x86-64's 4, and the same bytes (Swift never fuses a multiply and an add). Such a binary
// runs only on CPUs with those instructions. Unset or empty, the build is portable, and the package
// takes no unsafe flags, so that it can be a dependency.
let targetCPU = Context.environment["SAFESHARD_TARGET_CPU", default: ""]
let kernelSettings: [SwiftSetting] = targetCPU.isEmpty ? [] : [.unsafeFlags(["-target-cpu", targetCPU])]

let package = Package(
  name: "safeshard",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "safeshard", targets: ["safeshard"]),
    .library(name: "SafeTensors", targets: ["SafeTensors"]),
    .library(name: "Quantization", targets: ["Quantization"]),
    .library(name: "TorchAO", targets: ["TorchAO"]),
    .library(name: "Pickle", targets: ["Pickle"]),
    .library(name: "Pipeline", targets: ["Pipeline"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
  ],
  targets: [
    .target(
      name: "SafeTensors",
      dependencies: ["CPlatform", .product(name: "SystemPackage", package: "swift-system")],
      swiftSettings: strict
    ),
    .target(name: "Quantization", swiftSettings: strict + kernelSettings),
    .target(name: "TorchAO", dependencies: ["SafeTensors", "Quantization"], swiftSettings: strict),
    .target(
      name: "Pickle",
      dependencies: [
        "SafeTensors", "TorchAO", "Quantization", .product(name: "SystemPackage", package: "swift-system"),
      ],
      swiftSettings: strict
    ),
    .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
    .target(name: "CPlatform"),
    .target(
      name: "Pipeline",
      dependencies: [
        "SafeTensors", "Quantization", "TorchAO", "Pickle", "CLZ4", "CPlatform",
        .product(name: "SystemPackage", package: "swift-system"),
        .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Yams", package: "Yams"),
      ],
      // Fault points (`SAFESHARD_FAULT`) exist only in debug builds, which the tests use.
      swiftSettings: strict + [.define("SAFESHARD_FAULTS", .when(configuration: .debug))]
    ),
    .executableTarget(
      name: "safeshard",
      dependencies: [
        "SafeTensors", "TorchAO", "Pipeline",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: strict
    ),
    .testTarget(
      name: "SafeTensorsTests",
      dependencies: ["SafeTensors"],
      swiftSettings: testSettings
    ),
    .testTarget(
      name: "QuantizationTests",
      dependencies: ["Quantization", "SafeTensors", .product(name: "Crypto", package: "swift-crypto")],
      swiftSettings: testSettings
    ),
    .testTarget(
      name: "TorchAOTests",
      dependencies: ["TorchAO", "Quantization", "SafeTensors"],
      swiftSettings: testSettings
    ),
    .testTarget(
      name: "PickleTests",
      dependencies: ["Pickle", "TorchAO", "Quantization", "SafeTensors"],
      swiftSettings: testSettings
    ),
    .testTarget(
      name: "PipelineTests",
      dependencies: [
        "Pipeline", "TorchAO", "Quantization", "SafeTensors", "CPlatform",
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      swiftSettings: testSettings
    ),
    .testTarget(
      name: "SafeshardCLITests",
      dependencies: ["safeshard", "SafeTensors"],
      swiftSettings: testSettings
    ),
  ]
)
