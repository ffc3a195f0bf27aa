// Child processes: spawning, captured output, exit statuses, and children tied to their parent's
// life, which the kernel ends when the parent is SIGKILLed.

#include "kh/process/subprocess.h"

#include <signal.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"
#include "support/process_exit.h"

namespace kh::process {
namespace {

using namespace std::chrono_literals;
using testing::awaitProcessExit;

class SubprocessTest : public ::testing::TestWithParam<bool> {};

TEST_P(SubprocessTest, CapturesOutputAndExitStatus) {
  SpawnOptions o;
  o.argv = {"sh", "-c", "echo one; echo two >&2; exit 3"};
  o.die_with_parent = GetParam();
  auto child = Subprocess::spawn(o);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(*(*child)->readLine(5s), "one");
  EXPECT_EQ(*(*child)->readLine(5s), "two");
  auto exit = (*child)->wait(5s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(exit->exited);
  EXPECT_EQ(exit->code, 3);
}

TEST_P(SubprocessTest, ChildGetsEnvironmentWorkingDirAndNoInheritedDescriptors) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);  // not CLOEXEC: still must not reach the child
  SpawnOptions o;
  o.argv = {"sh", "-c", "echo $KH_TEST_VAR; pwd; ls /proc/self/fd | wc -l"};
  o.env = {{"KH_TEST_VAR", "hello"}};
  o.working_dir = "/tmp";
  o.die_with_parent = GetParam();
  auto child = Subprocess::spawn(o);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(*(*child)->readLine(5s), "hello");
  EXPECT_EQ(*(*child)->readLine(5s), "/tmp");
  // 0, 1, 2 and the one ls opens to list them.
  EXPECT_EQ(*(*child)->readLine(5s), "4");
}

TEST_P(SubprocessTest, AMissingProgramIsAClearError) {
  SpawnOptions o;
  o.argv = {"kh-no-such-program"};
  o.die_with_parent = GetParam();
  auto child = Subprocess::spawn(o);
  ASSERT_FALSE(child.ok());
  EXPECT_NE(std::string(child.status().message()).find("cannot start 'kh-no-such-program'"), std::string::npos)
      << child.status();
}

INSTANTIATE_TEST_SUITE_P(Spawn, SubprocessTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "DiesWithParent" : "PosixSpawn"; });

TEST(DieWithParent, TheChildEndsWhenItsParentIsKilled) {
  SpawnOptions o;
  o.argv = {KH_SPAWN_HELPER};
  auto parent = Subprocess::spawn(o);
  ASSERT_TRUE(parent.ok()) << parent.status();
  auto line = (*parent)->readLine(10s);
  ASSERT_TRUE(line.ok()) << line.status();
  ASSERT_EQ(line->rfind("child ", 0), 0u) << *line;
  pid_t child = std::stoi(line->substr(6));
  ASSERT_GT(child, 1);
  ASSERT_EQ(::kill(child, 0), 0);  // running
  ::kill((*parent)->pid(), SIGKILL);
  EXPECT_TRUE(awaitProcessExit(child, 2000ms)) << "the child " << child << " outlived its SIGKILLed parent";
  ::kill(child, SIGKILL);  // in case it did not
}

TEST(DieWithParent, AChildStartedFromAThreadThatEndsLivesOn) {
  // PR_SET_PDEATHSIG follows the thread that forked: the spawn thread must not be the caller's.
  std::unique_ptr<Subprocess> child;
  std::thread([&] {
    SpawnOptions o;
    o.argv = {"sleep", "30"};
    o.capture_output = false;
    o.die_with_parent = true;
    auto c = Subprocess::spawn(o);
    ASSERT_TRUE(c.ok()) << c.status();
    child = std::move(*c);
  }).join();
  ASSERT_TRUE(child);
  EXPECT_FALSE(awaitProcessExit(child->pid(), 200ms)) << "the child died with the thread that started it";
  EXPECT_TRUE(child->running());
}

}  // namespace
}  // namespace kh::process
