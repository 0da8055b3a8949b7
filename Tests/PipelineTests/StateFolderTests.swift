import Foundation
import Testing

@testable import Pipeline

/// The state folder: never followed through a link (M3), and discarded only under every
/// worker's lock (M2).
@Suite struct StateFolderTests {
  @Test func aSymlinkedStateFolderIsRefusedAndItsTargetKept() throws {
    try withTemporaryDirectory { scratch in
      let victim = scratch + "/victim"
      try FileManager.default.createDirectory(atPath: victim + "/sub", withIntermediateDirectories: true)
      #expect(FileManager.default.createFile(atPath: victim + "/sub/data.txt", contents: Data([1])))
      let output = OutputDirectory(path: scratch + "/out")
      try FileManager.default.createDirectory(atPath: output.path, withIntermediateDirectories: true)
      try FileManager.default.createSymbolicLink(atPath: output.stateFolder, withDestinationPath: victim)

      guard case .foreign(let why) = output.status() else {
        Issue.record("a symlinked state folder is taken for \(output.status())")
        return
      }
      #expect(why.contains("symbolic link"))
      for attempt in [{ _ = try output.lock() }, { _ = try output.lockAll(workerCount: 2) }, { try output.reset() }] {
        let error = #expect(throws: PipelineError.self) { try attempt() }
        #expect(error?.code == .outputExists)
        #expect(error?.message.contains(output.stateFolder) == true)
      }
      #expect(try FileManager.default.subpathsOfDirectory(atPath: victim).sorted() == ["sub", "sub/data.txt"])
    }
  }

  @Test func everyWorkersLockIsTakenOrNone() throws {
    try withTemporaryDirectory { scratch in
      let output = OutputDirectory(path: scratch)
      // A lock left by a run with three workers is taken too.
      do {
        let third = try output.lock(worker: 2)
        let error = #expect(throws: PipelineError.self) { try output.lockAll(workerCount: 2) }
        #expect(error?.code == .locked)
        #expect(error?.message.contains("worker 2") == true)
        withExtendedLifetime(third) {}
      }
      // None of the others stayed held.
      do {
        let free = (try output.lock(worker: 0), try output.lock(worker: 1))
        withExtendedLifetime(free) {}
      }
      let all = try output.lockAll(workerCount: 2)
      #expect(all.keys.sorted() == [0, 1, 2])
      let error = #expect(throws: PipelineError.self) { try output.lock(worker: 1) }
      #expect(error?.code == .locked)
      // An optimised build ends a value's lifetime at its last use: the locks must outlive the
      // check.
      withExtendedLifetime(all) {}
    }
  }
}
