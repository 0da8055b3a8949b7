import Dispatch
import Foundation
import Synchronization
import Testing

@testable import Pipeline

@Suite("BlockingIOExecutor")
struct BlockingIOExecutorTests {
  @Test(
    "execute runs the work on the executor's threads, no more of them than it has, and returns its result or its typed error"
  )
  func runsOnItsThreads() async throws {
    let executor = BlockingIOExecutor(threadCount: 2, name: "test-io")
    defer { executor.shutdown() }
    let threads = Locked(Set<UInt>())
    for _ in 0..<20 {
      let value = try await executor.execute { () throws(PipelineError) -> Int in
        threads.withLock { _ = $0.insert(UInt(pthread_self())) }
        return 7
      }
      #expect(value == 7)
    }
    #expect((1...2).contains(threads.value.count))
    let error = await #expect(throws: PipelineError.self) {
      try await executor.execute { () throws(PipelineError) in throw PipelineError(.io, "no disk") }
    }
    #expect(error?.message == "no disk")
  }

  @Test("no more pieces of work run at once than the executor has threads")
  func bounded() async throws {
    let executor = BlockingIOExecutor(threadCount: 2, name: "test-io")
    defer { executor.shutdown() }
    let running = Locked((now: 0, most: 0))
    try await withThrowingTaskGroup { group in
      for _ in 0..<8 {
        group.addTask {
          try await executor.execute { () throws(CancellationError) in
            running.withLock {
              $0.now += 1
              $0.most = max($0.most, $0.now)
            }
            usleep(20_000)
            running.withLock { $0.now -= 1 }
          }
        }
      }
      try await group.waitForAll()
    }
    #expect(running.withLock { $0.most } <= 2)
  }

  @Test("work whose task is cancelled before a thread takes it never runs, and the call throws at once")
  func cancelledBeforeItBegins() async throws {
    let executor = BlockingIOExecutor(threadCount: 1, name: "test-io")
    defer { executor.shutdown() }
    let release = DispatchSemaphore(value: 0)
    executor.enqueue { release.wait() }  // holds the only thread
    let ran = Atomic(false)
    let task = Task {
      try await executor.execute { () throws(CancellationError) in ran.store(true, ordering: .relaxed) }
    }
    task.cancel()
    // Resumed while the thread is still held: the work was taken off the queue.
    let result = await task.result
    #expect(throws: CancellationError.self) { try result.get() }
    release.signal()
    try await executor.execute { () throws(CancellationError) in }
    let didRun = ran.load(ordering: .relaxed)
    #expect(!didRun)
  }

  @Test("typed callers get their own error for a cancellation: a cancelled PipelineError")
  func cancelledAsPipelineError() async {
    let executor = BlockingIOExecutor(threadCount: 1, name: "test-io")
    defer { executor.shutdown() }
    let task = Task { () async throws(PipelineError) -> Int in
      withUnsafeCurrentTask { $0?.cancel() }
      return try await executor.execute { () throws(PipelineError) in 1 }
    }
    let error = await #expect(throws: PipelineError.self) { try await task.value }
    #expect(error?.code == .cancelled)
    #expect(error?.cause is CancellationError)
  }

  @Test("work already begun runs to its end when its task is cancelled")
  func begunWorkFinishes() async throws {
    let executor = BlockingIOExecutor(threadCount: 1, name: "test-io")
    defer { executor.shutdown() }
    let begun = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    let task = Task {
      try await executor.execute { () throws(CancellationError) -> Int in
        begun.signal()
        release.wait()
        return 42
      }
    }
    await withCheckedContinuation { continuation in
      DispatchQueue.global().async {
        begun.wait()
        continuation.resume()
      }
    }
    task.cancel()
    release.signal()
    #expect(try await task.value == 42)
  }

  @Test("shutdown runs the work queued before it, then every thread ends")
  func shutdownDrains() async throws {
    let executor = BlockingIOExecutor(threadCount: 2, name: "test-io")
    let done = Atomic(0)
    for _ in 0..<6 {
      executor.enqueue {
        usleep(5_000)
        done.add(1, ordering: .relaxed)
      }
    }
    executor.shutdown()
    var waited = 0
    while !executor.isStopped && waited < 5_000 {
      try await Task.sleep(for: .milliseconds(1))
      waited += 1
    }
    #expect(executor.isStopped)
    let finished = done.load(ordering: .relaxed)
    #expect(finished == 6)
  }

  @Test("actors on a SerialThreadExecutor run on its one thread, one job at a time")
  func serialThread() async {
    actor Counter {
      let executor = SerialThreadExecutor(name: "test-writer")
      nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
      var inside = 0
      var most = 0
      var threads: Set<UInt> = []

      func visit() {
        inside += 1
        most = max(most, inside)
        threads.insert(UInt(pthread_self()))
        usleep(1_000)
        inside -= 1
      }
    }
    let counter = Counter()
    await withTaskGroup { group in
      for _ in 0..<20 {
        group.addTask { await counter.visit() }
      }
    }
    #expect(await counter.most == 1)
    #expect(await counter.threads.count == 1)
  }
}
