// swift-tools-version: 6.2
// Benchmarks for safeshard. Build and run in release mode only: `bash Benchmarks/run.sh`.
import PackageDescription

let settings: [SwiftSetting] = [.swiftLanguageMode(.v6), .treatAllWarnings(as: .error)]

let package = Package(
  name: "safeshard-benchmarks",
  platforms: [.macOS(.v15)],
  dependencies: [.package(name: "safeshard", path: "..")],
  targets: [
    .executableTarget(
      name: "header-bench",
      dependencies: [.product(name: "SafeTensors", package: "safeshard")],
      swiftSettings: settings
    ),
    .executableTarget(
      name: "quant-bench",
      dependencies: [
        .product(name: "Quantization", package: "safeshard"),
        .product(name: "SafeTensors", package: "safeshard"),
      ],
      swiftSettings: settings
    ),
    .executableTarget(
      name: "spill-bench",
      dependencies: [.product(name: "Pipeline", package: "safeshard")],
      swiftSettings: settings
    ),
  ]
)
