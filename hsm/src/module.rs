//! One PKCS #11 context per module path, shared by the whole process.
//!
//! PKCS #11 allows one `C_Initialize` per library per process, so every key on a
//! module shares its context. Each (re-)initialisation gets a new *generation*:
//! sessions and object handles belong to the generation that opened them, and a
//! holder that finds its generation old forgets them (never closes them: after a
//! re-initialisation the same handle number may be another thread's new session).
//!
//! The context is re-initialised in two cases: the process id changed (a fork: the
//! child must call `C_Initialize` itself, PKCS #11 v2.40 §5.2), and a token that
//! went away is looked for again (some modules, SoftHSM among them, read their
//! token list only at `C_Initialize`). Every call into the module holds the read
//! side of a lock; re-initialisation takes the write side, so it never pulls a
//! context from under a call in flight.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

pub(crate) struct Module {
    path: PathBuf,
    state: RwLock<State>,
}

struct State {
    ctx: Option<Pkcs11>,
    pid: u32,
    generation: u64,
}

/// The initialised context of a module, held for the length of one use.
pub(crate) struct Context<'a> {
    guard: RwLockReadGuard<'a, State>,
}

impl Context<'_> {
    pub(crate) fn pkcs11(&self) -> &Pkcs11 {
        self.guard
            .ctx
            .as_ref()
            .expect("a Context exists only over an initialised module")
    }

    pub(crate) fn generation(&self) -> u64 {
        self.guard.generation
    }
}

impl Module {
    /// The process-wide module for `path`, loaded and initialised on first use.
    pub(crate) fn open(path: &Path) -> Result<Arc<Module>, CkError> {
        static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
        let module = {
            let mut modules = MODULES
                .get_or_init(Default::default)
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            modules
                .entry(path.to_path_buf())
                .or_insert_with(|| {
                    Arc::new(Module {
                        path: path.to_path_buf(),
                        state: RwLock::new(State {
                            ctx: None,
                            pid: 0,
                            generation: 0,
                        }),
                    })
                })
                .clone()
        };
        // Load now, so a wrong path is an error at start.
        drop(module.context()?);
        Ok(module)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The context, initialised (again, after a fork) if need be.
    pub(crate) fn context(&self) -> Result<Context<'_>, CkError> {
        loop {
            {
                let state = self.state.read().unwrap_or_else(|e| e.into_inner());
                if state.ctx.is_some() && state.pid == std::process::id() {
                    return Ok(Context { guard: state });
                }
            }
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            if state.ctx.is_none() || state.pid != std::process::id() {
                self.initialise(&mut state, false)?;
            }
        }
    }

    /// Finalizes and initialises the module again, unless someone already did
    /// since `seen_generation`.
    pub(crate) fn reinitialise(&self, seen_generation: u64) -> Result<(), CkError> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.generation != seen_generation || state.pid != std::process::id() {
            drop(state);
            return self.context().map(drop);
        }
        self.initialise(&mut state, true)
    }

    fn initialise(&self, state: &mut State, restart: bool) -> Result<(), CkError> {
        let pid = std::process::id();
        let forked = state.ctx.is_some() && state.pid != pid;
        if let Some(old) = state.ctx.take() {
            // In a forked child the parent's context is not ours to finalize; the
            // library handle is dropped with it.
            if restart && !forked {
                let _ = old.finalize();
            }
        }
        let ctx = Pkcs11::new(&self.path)?;
        let args = CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK);
        match ctx.initialize(args) {
            Ok(()) => {}
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) if forked || restart => {
                // A library that did not notice the fork (or kept its state past a
                // finalize): start it afresh so its sessions are this process's.
                let _ = ctx.clone().finalize();
                ctx.initialize(args)?;
            }
            // Another user of the library in this process initialised it first.
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(e),
        }
        state.ctx = Some(ctx);
        state.pid = pid;
        state.generation += 1;
        Ok(())
    }
}
