//! What the role handles (`IssuanceLog`, `RequestBook`, `KeyArchive`) share:
//! [`delegate!`], their methods that pass straight to the [`Store`](crate::Store)
//! they wrap, written one line each.

/// `pub async fn` methods of a handle with a `store` field, each calling the
/// store's method of the same name with the same arguments:
/// `delegate! { /// doc  async fn name(&self, arg: Type) -> Ret; … }`.
macro_rules! delegate {
    ($($(#[$attr:meta])* async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(
            $(#[$attr])*
            pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.store.$name($($arg),*).await
            }
        )*
    };
}
pub(crate) use delegate;
