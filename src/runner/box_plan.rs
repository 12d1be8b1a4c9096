//! A plan with its image's defaults ([`BoxPlan`]): what a box runs, and what `foxbox plan`
//! prints for the same spec and flags.

use crate::image::{Image, ImageConfig, Store};
use crate::plan::{BoxPlan, ImageDefaults, ImageRef, Plan};
use crate::store::paths::Paths;

/// What a box of an image with config `c` gets unless its plan says otherwise; `shell`:
/// the image has [`crate::plan::DEFAULT_SHELL`].
pub fn image_defaults(c: &ImageConfig, shell: bool) -> ImageDefaults {
    ImageDefaults {
        workdir: c.workdir.clone(),
        user: c.user.clone(),
        env: c.env.clone(),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        shell,
    }
}

/// The caller's uid and gid, which `keep-id` keeps in the box.
pub fn caller_ids() -> (u32, u32) {
    (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    )
}

/// The plan a box of `image` runs.
pub fn box_plan(plan: &Plan, image: &Image) -> BoxPlan {
    let defaults = image_defaults(&image.config, crate::image::rootfs::has_shell(image));
    BoxPlan::new(plan.clone(), &defaults, caller_ids())
}

/// The plan a box started now would run, as far as this host knows without changing
/// anything: `None` when the image is not in the store (it is pulled when a box starts).
/// A rootfs tarball brings no defaults, imported or not (whether it has a shell is known
/// once it is imported: the argv stays empty here when the plan names none).
pub fn preview(paths: &Paths, plan: &Plan) -> Result<Option<BoxPlan>, crate::image::ImageError> {
    match &plan.image.value {
        ImageRef::Tarball { .. } => Ok(Some(BoxPlan::new(
            plan.clone(),
            &image_defaults(&ImageConfig::default(), false),
            caller_ids(),
        ))),
        ImageRef::Stored(n) => {
            if !paths.images().is_dir() {
                return Ok(None);
            }
            let store = Store::open_for_boxes(paths)?;
            let digest = n.digest().map(|d| d.to_string());
            Ok(store
                .find_named(n.name(), n.tag(), digest.as_deref())?
                .map(|(image, _)| box_plan(plan, &image)))
        }
    }
}
