// Which CPUs hold code from which frames, and what each owes before it runs again.
#include "emu/cpu/code_coherence.hpp"

#include <algorithm>

namespace mmemu {

CodeCoherence::CodeCoherence(PhysMem& phys) : phys_(phys) {
  phys_.set_code_observer(this);
}

CodeCoherence::~CodeCoherence() {
  if (phys_.code_observer() == this) phys_.set_code_observer(nullptr);
}

int CodeCoherence::attach() {
  for (std::size_t i = 0; i < clients_.size(); ++i) {
    if (!clients_[i].live) {
      const std::uint64_t epoch = clients_[i].epoch + 1;  // registrations of the old CPU lapse
      clients_[i] = Client{true, epoch, false, {}};
      return static_cast<int>(i);
    }
  }
  clients_.push_back(Client{true, 0, false, {}});
  return static_cast<int>(clients_.size() - 1);
}

void CodeCoherence::detach(int cpu) {
  Client& c = clients_[static_cast<std::size_t>(cpu)];
  if (c.writes_shared) --shared_writers_;
  c.writes_shared = false;
  c.live = false;
  ++c.epoch;
}

bool CodeCoherence::current(const User& u) const {
  const Client& c = clients_[static_cast<std::size_t>(u.cpu)];
  return c.live && c.epoch == u.epoch;
}

void CodeCoherence::owe_code_drop(int cpu) {
  Owed& o = clients_[static_cast<std::size_t>(cpu)].owed;
  o.drop_code = true;
  o.drop_tlb = true;
}

void CodeCoherence::fetch_filled(int cpu, pfn_t pfn) {
  PageDesc& d = phys_.desc(pfn);
  std::vector<User>& users = users_[pfn];
  if (!(d.flags & PG_exec_cached)) users.clear();  // registrations from before a change
  d.flags |= PG_exec_cached;
  const std::uint64_t epoch = clients_[static_cast<std::size_t>(cpu)].epoch;
  for (const User& u : users)
    if (u.cpu == cpu && u.epoch == epoch) return;
  std::erase_if(users, [this](const User& u) { return !current(u); });
  users.push_back(User{cpu, epoch});
  // A CPU that may store into this frame through a TLB entry filled before it held code
  // must come back through its fill before its next store.
  if (shared_writers_ == 0) return;
  const bool shareable = !(d.flags & PG_anon) || d.mapcount > 1;
  if (!shareable) return;
  for (std::size_t i = 0; i < clients_.size(); ++i)
    if (static_cast<int>(i) != cpu && clients_[i].live && clients_[i].writes_shared)
      clients_[i].owed.drop_tlb = true;
}

void CodeCoherence::write_filled(int cpu, pfn_t pfn) {
  PageDesc& d = phys_.desc(pfn);
  Client& self = clients_[static_cast<std::size_t>(cpu)];
  if (!self.writes_shared && (!(d.flags & PG_anon) || d.mapcount > 1)) {
    self.writes_shared = true;
    ++shared_writers_;
  }
  if (!(d.flags & PG_exec_cached)) return;
  auto it = users_.find(pfn);
  if (it == users_.end()) return;
  std::erase_if(it->second, [&](const User& u) {
    if (!current(u)) return true;
    if (u.cpu == cpu) return false;  // the writer's emulator sees its own stores
    owe_code_drop(u.cpu);
    return true;
  });
  if (it->second.empty()) {
    d.flags &= ~PG_exec_cached;
    users_.erase(it);
  }
}

void CodeCoherence::tlb_flushed(int cpu) {
  Client& c = clients_[static_cast<std::size_t>(cpu)];
  c.owed.drop_tlb = false;
  if (c.writes_shared) --shared_writers_;
  c.writes_shared = false;
}

void CodeCoherence::code_dropped(int cpu) {
  Client& c = clients_[static_cast<std::size_t>(cpu)];
  c.owed.drop_code = false;
  ++c.epoch;
}

void CodeCoherence::code_frame_changed(pfn_t pfn) {
  auto it = users_.find(pfn);
  if (it == users_.end()) return;
  for (const User& u : it->second)
    if (current(u)) owe_code_drop(u.cpu);
  users_.erase(it);
}

}  // namespace mmemu
