//! ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation and bucket
//! versioning.

use meta_raft::state_machine::Versioning;
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use crate::error::{self, s3};
use crate::gateway::{bucket_of, ctx, timestamp, Gateway};

pub(crate) fn owner(user: &str) -> Owner {
    Owner {
        display_name: Some(user.to_owned()),
        id: Some(user.to_owned()),
    }
}

impl Gateway {
    pub(crate) async fn op_list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let c = ctx(&req.extensions)?;
        let prefix = req.input.prefix.clone();
        let buckets = self
            .meta
            .list_buckets(Some(&c.user))
            .await
            .map_err(error::meta)?;
        let buckets = buckets
            .into_iter()
            .filter(|b| prefix.as_deref().is_none_or(|p| b.name.starts_with(p)))
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_ms)),
                bucket_region: Some(self.cfg.region.clone()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner(&c.user)),
            prefix,
            ..Default::default()
        }))
    }

    pub(crate) async fn op_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let c = ctx(&req.extensions)?;
        let input = req.input;
        if let Some(lc) = input
            .create_bucket_configuration
            .as_ref()
            .and_then(|cfg| cfg.location_constraint.as_ref())
        {
            if lc.as_str() != self.cfg.region && !lc.as_str().is_empty() {
                return Err(s3(
                    S3ErrorCode::InvalidLocationConstraint,
                    format!(
                        "The specified location-constraint {:?} is not valid; this cluster is {:?}",
                        lc.as_str(),
                        self.cfg.region
                    ),
                ));
            }
        }
        self.meta
            .create_bucket(
                &input.bucket,
                &c.user,
                self.now_ms(),
                Versioning::Unversioned,
            )
            .await
            .map_err(error::meta)?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", input.bucket)),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        self.meta
            .delete_bucket(&bucket.name)
            .await
            .map_err(error::meta)?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    pub(crate) async fn op_head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let c = ctx(&req.extensions)?;
        bucket_of(&c)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.cfg.region.clone()),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let c = ctx(&req.extensions)?;
        bucket_of(&c)?;
        // us-east-1 answers an empty constraint, as S3 does.
        let lc = (self.cfg.region != "us-east-1")
            .then(|| BucketLocationConstraint::from(self.cfg.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: lc,
        }))
    }

    pub(crate) async fn op_put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let status = req.input.versioning_configuration.status;
        let v = match status.as_ref().map(|s| s.as_str()) {
            Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
            Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
            other => {
                return Err(s3(
                    S3ErrorCode::MalformedXML,
                    format!("versioning status must be Enabled or Suspended, got {other:?}"),
                ))
            }
        };
        self.meta
            .set_bucket_versioning(&bucket.name, v)
            .await
            .map_err(error::meta)?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    pub(crate) async fn op_get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let c = ctx(&req.extensions)?;
        let bucket = bucket_of(&c)?;
        let status = match bucket.versioning {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::ENABLED,
            )),
            Versioning::Suspended => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::SUSPENDED,
            )),
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            ..Default::default()
        }))
    }
}
